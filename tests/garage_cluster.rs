//! The S3 test harness itself (`tests/common/garage.rs`): a real 3-node
//! Garage cluster with replication factor 3 comes up on 127.0.0.1, stores
//! and returns objects through S3, keeps reading and writing with one node
//! killed (quorum 2 of 3), and takes the node back; the proxy in front of
//! an endpoint holds an upload mid-stream and vanishes on close. Needs `garage` 2.x on
//! PATH: without it these tests fail saying how to install it.

mod common;

use std::time::Duration;

use common::garage::{raw_s3, Garage, Proxy, NODES, REGION};
use common::random_bytes;

#[test]
fn cluster_has_three_nodes_with_replication_factor_three() {
    let mut g = Garage::start();
    let h = g.health();
    assert_eq!(h["status"], "healthy", "{h:#}");
    assert_eq!(h["storageNodes"], NODES as u64, "{h:#}");
    assert_eq!(h["storageNodesUp"], NODES as u64, "{h:#}");
    assert_eq!(h["partitionsAllOk"], h["partitions"], "{h:#}");
    let layout = g.layout();
    assert_eq!(layout["version"], 1, "{layout:#}");
    assert_eq!(layout["roles"].as_array().unwrap().len(), NODES);
    assert_eq!(g.replication_factor(), 3, "{layout:#}");

    // Three distinct S3 endpoints on loopback, one region.
    let eps = g.endpoints();
    assert_eq!(eps.len(), NODES);
    for e in &eps {
        assert!(e.starts_with("http://127.0.0.1:"), "{e}");
    }
    assert_ne!(eps[0], eps[1]);
    assert_ne!(eps[1], eps[2]);
    assert_eq!(g.region(), REGION);
    assert_eq!(g.url("srv1"), "s3://wsnap-test/srv1");
    let env = g.aws_env();
    assert_eq!(env[0].0, "AWS_ACCESS_KEY_ID");
    assert!(env[0].1.starts_with("GK"));
}

#[test]
fn objects_written_through_one_node_read_back_through_every_node() {
    let g = Garage::start();
    let raw = g.raw();
    assert!(raw.list("").is_empty());

    let big = random_bytes(1, 3 * 1024 * 1024 + 17);
    raw.put("p/big.bin", &big);
    raw.put("p/small", b"hello");
    raw.put("q/other", b"x");
    assert_eq!(
        raw.list("p"),
        vec![
            ("p/big.bin".to_string(), big.len() as u64),
            ("p/small".to_string(), 5)
        ]
    );
    assert_eq!(raw.list("").len(), 3);

    for ep in g.endpoints() {
        let r = raw_s3(&ep, REGION, &g.bucket, &g.key);
        assert!(r.get("p/big.bin") == big, "{ep}: big object differs");
        assert_eq!(r.get("p/small"), b"hello", "{ep}");
    }

    // The tamper helper changes exactly one bit.
    raw.flip_bit("p/small", 1, 0);
    assert_eq!(raw.get("p/small"), b"hdllo");
    raw.delete("q/other");
    assert!(raw.try_get("q/other").is_err());
}

#[test]
fn one_node_killed_the_cluster_still_reads_and_writes_then_takes_it_back() {
    let mut g = Garage::start();
    let before = random_bytes(2, 2 * 1024 * 1024 + 5);
    g.raw().put("before", &before);

    g.kill(2);
    assert!(!g.is_running(2));

    // At once, before the others notice: node 0 serves S3 and has a
    // quorum with node 1.
    let raw = g.raw();
    assert!(raw.get("before") == before, "read with a node down");
    let during = random_bytes(3, 1024 * 1024 + 3);
    raw.put("during", &during);
    assert!(raw.get("during") == during, "write with a node down");
    assert_eq!(raw.list("").len(), 2);

    // Once they have noticed, they say so and go on.
    g.wait_quorum();
    let h = g.health();
    assert_eq!(h["storageNodesUp"], 2, "{h:#}");
    assert_eq!(h["status"], "degraded", "{h:#}");
    assert_eq!(h["partitionsQuorum"], h["partitions"], "{h:#}");
    raw.put("after", b"after");
    assert_eq!(raw.get("after"), b"after");

    g.restart(2);
    assert!(g.is_running(2));
    let h = g.health();
    assert_eq!(h["storageNodesUp"], NODES as u64, "{h:#}");
    // The restarted node answers for both objects.
    let r2 = raw_s3(&g.endpoint_of(2), REGION, &g.bucket, &g.key);
    assert!(r2.get("during") == during);
    assert!(r2.get("before") == before);
    assert_eq!(r2.get("after"), b"after");
}

#[test]
fn another_bucket_and_key_are_separate() {
    let mut g = Garage::start();
    let other = g.bucket_with_key("wsnap-other");
    assert_ne!(other, g.key);
    let mine = raw_s3(&g.endpoint(), REGION, "wsnap-other", &other);
    mine.put("obj", b"1");
    assert_eq!(mine.get("obj"), b"1");
    // The first key has no rights on the new bucket, nor the new key on the
    // first bucket.
    let foreign = raw_s3(&g.endpoint(), REGION, "wsnap-other", &g.key);
    assert!(foreign.try_get("obj").is_err());
    let reverse = raw_s3(&g.endpoint(), REGION, &g.bucket, &other);
    assert!(reverse.try_get("anything").is_err());

    // A key with no bucket at all.
    let bare = g.create_key("wsnap-bare");
    let none = raw_s3(&g.endpoint(), REGION, "wsnap-other", &bare);
    assert!(none.try_get("obj").is_err());

    // Deleted (emptied first), it is gone for its own key too.
    g.delete_bucket("wsnap-other", &other);
    assert!(mine.try_get("obj").is_err());
    let listed = g.run(&["bucket", "list"]);
    assert!(!listed.contains("wsnap-other"), "{listed}");
    assert!(listed.contains("wsnap-test"), "{listed}");
}

#[test]
fn the_proxy_holds_an_upload_mid_stream_releases_it_and_vanishes_on_close() {
    let g = Garage::start();
    let mut proxy = Proxy::start(&g.endpoint());
    let through = raw_s3(&proxy.endpoint(), REGION, &g.bucket, &g.key);
    through.put("small", b"through the proxy");
    assert_eq!(g.raw().get("small"), b"through the proxy");

    let big = random_bytes(4, 4 * 1024 * 1024);
    proxy.hold_after(proxy.sent() + 1024 * 1024);
    let (ep, bucket, key) = (proxy.endpoint(), g.bucket.clone(), g.key.clone());
    let upload = {
        let big = big.clone();
        std::thread::spawn(move || raw_s3(&ep, REGION, &bucket, &key).put("big", &big))
    };
    proxy.wait_held(Duration::from_secs(60));
    // Held after 1 MiB of 4: the object is not there yet.
    assert!(g.raw().try_get("big").is_err());
    assert!(!upload.is_finished());
    proxy.release();
    upload.join().expect("upload through the proxy");
    assert!(through.get("big") == big);

    proxy.close();
    assert!(through.try_get("small").is_err(), "the proxy is gone");
    assert_eq!(g.raw().get("small"), b"through the proxy");
}
