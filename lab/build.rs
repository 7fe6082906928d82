//! Builds the lab tools' eBPF programs (`lab/ebpf/`: the generator's, the sink's, the in-kernel
//! forwarder's XDP programs and the host VLAN tagging classifiers) for the bpf target, the way
//! `dataplane/build.rs` builds the steering program (nightly, `-Z build-std=core`,
//! bpf-linker, all installed by scripts/setup.sh), and leaves the object in OUT_DIR, where
//! `bpf` embeds it with `include_bytes_aligned!`.

fn main() -> anyhow::Result<()> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "xpe-lab-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
