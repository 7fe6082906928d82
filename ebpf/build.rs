//! For the bpf target only: lets LLVM read and write packet bytes a word at a time where Rust
//! asks for unaligned access (`read_unaligned`, `write_unaligned`), instead of one byte at a
//! time. The kernel allows misaligned packet access on every architecture with efficient
//! unaligned access (x86-64, arm64); the verifier refuses a program that needs it elsewhere.
//! Needs LLVM 22 in bpf-linker (scripts/setup.sh installs that one).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("bpf") {
        println!("cargo:rustc-link-arg-bins=--cpu-features=+allows-misaligned-mem-access");
    }
}
