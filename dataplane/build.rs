//! Builds the XDP steering program (`ebpf/`, for the bpf target, with the nightly toolchain,
//! `-Z build-std=core` and bpf-linker, all installed by scripts/setup.sh) and leaves the object
//! in OUT_DIR, where `xsk::steer` embeds it with `include_bytes_aligned!`.

fn main() -> anyhow::Result<()> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "xpe-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
