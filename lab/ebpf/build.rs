//! For the bpf target only: word-wide packet access where Rust asks for unaligned access, as
//! for xpe's own programs (ebpf/build.rs says why). The in-kernel forwarder the pps harness
//! measures xpe's fast path against is built the same way.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("bpf") {
        println!("cargo:rustc-link-arg-bins=--cpu-features=+allows-misaligned-mem-access");
    }
}
