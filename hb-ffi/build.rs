//! Gives libheartbeater.so a SONAME, so that programs record the ABI they were linked
//! against (libheartbeater.so.0.1 for 0.1.x: before 1.0 every minor version may break the
//! ABI, as cargo's semver has it) and versions can be installed side by side.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let major = env!("CARGO_PKG_VERSION_MAJOR");
        let abi = if major == "0" { format!("0.{}", env!("CARGO_PKG_VERSION_MINOR")) } else { major.to_string() };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libheartbeater.so.{abi}");
    }
}
