//! `mount` and `umount` (placeholder while the mount is built).
use std::path::{Path, PathBuf};

use clap::Args;
use wsnap::Result;

#[derive(Args, Debug)]
pub struct MountArgs {
    pub mountpoint: PathBuf,
}

pub fn mount(_store_dir: &Path, _a: &MountArgs) -> Result<u8> {
    todo!()
}

pub fn umount(_mountpoint: &Path) -> Result<u8> {
    todo!()
}
