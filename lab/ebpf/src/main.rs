//! The lab tools' eBPF programs, one object apart from the router's steering program: the
//! packet generator's XDP program (`gen.rs`), the counting sink (`sink.rs`), the in-kernel
//! forwarder (`redirect.rs`) and the lab hosts' 802.1Q tagging classifiers (`hostvlan.rs`).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// The programs are only meaningful for the bpf target; the host build (cargo build --workspace)
// sees an empty main.
#![cfg_attr(not(target_arch = "bpf"), allow(unused))]

#[cfg(target_arch = "bpf")]
mod gen;
#[cfg(target_arch = "bpf")]
mod hostvlan;
#[cfg(target_arch = "bpf")]
mod redirect;
#[cfg(target_arch = "bpf")]
mod sink;

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable path here; a loop is the conventional body.
    loop {}
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
