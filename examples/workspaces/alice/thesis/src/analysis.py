import csv

def mean(xs):
    return sum(xs) / len(xs)

if __name__ == "__main__":
    print(mean([1, 2, 3]))
