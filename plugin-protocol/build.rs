//! On Linux with glibc, every binary that depends on this crate (the plugins, the checker, the
//! tests) links the unwinder statically, as `gcc -static-libgcc` does, instead of loading
//! `libgcc_s.so.1` at each start.
//!
//! Why: notation starts a plugin three times per signature, and on glibc the second shared
//! library is 0.1 ms of each start (about 15% of starting `/bin/true`; `scripts/bench.sh`).
//! Rust's std asks for the unwinder as `-lgcc_s` and rustc has no `-static-libgcc` switch
//! (only a fully static `crt-static` build, which cannot `dlopen` a PKCS#11 module), so this
//! script puts `libgcc_eh.a` (the same unwinder, as an archive) first on the link search path
//! under that name. A PKCS#11 module written in C++ still loads `libgcc_s.so.1` for itself
//! when it is loaded: each copy unwinds only its own frames, as in any `-static-libgcc`
//! program. Without a `libgcc_eh.a` (another C compiler) the link stays as it was, with a
//! warning.
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    match static_unwinder() {
        Some(archive) => {
            let dir = PathBuf::from(var("OUT_DIR")).join("static-libgcc");
            let link = dir.join("libgcc_s.a");
            let made =
                std::fs::create_dir_all(&dir).and_then(|_| match std::fs::remove_file(&link) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => std::os::unix::fs::symlink(&archive, &link),
                });
            match made {
                Ok(()) => println!("cargo:rustc-link-search=native={}", dir.display()),
                Err(e) => println!(
                    "cargo:warning=libgcc_s stays a shared library: cannot link {}: {e}",
                    link.display()
                ),
            }
        }
        None => println!(
            "cargo:warning=libgcc_s stays a shared library: the C compiler has no libgcc_eh.a"
        ),
    }
}

/// `libgcc_eh.a` of the compiler that links (cargo's `RUSTC_LINKER`, else `cc`), if it has one.
fn static_unwinder() -> Option<PathBuf> {
    let linker = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".into());
    let out = Command::new(linker)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // A compiler without the file prints its bare name back.
    (out.status.success() && path.is_absolute() && Path::new(&path).is_file()).then_some(path)
}
