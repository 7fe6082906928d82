//! Compiles GoBGP's API from the proto files of the installed GoBGP (Debian's
//! `golang-github-osrg-gobgp-dev`), so the client always matches the daemon's version and no
//! copy of them lives in this repository. `XPE_GOBGP_PROTO` points elsewhere.

use std::path::PathBuf;

const DEFAULT: &str = "/usr/share/gocode/src/github.com/osrg/gobgp/api";
/// The well-known types (`google/protobuf/any.proto`, ...) from Debian's libprotobuf-dev.
const INCLUDE: &str = "/usr/include";

fn main() {
    println!("cargo:rerun-if-env-changed=XPE_GOBGP_PROTO");
    let dir = PathBuf::from(std::env::var("XPE_GOBGP_PROTO").unwrap_or_else(|_| DEFAULT.into()));
    let files = ["gobgp.proto", "attribute.proto", "capability.proto"].map(|f| dir.join(f));
    if let Some(missing) = files.iter().find(|f| !f.exists()) {
        panic!(
            "GoBGP's API definition {} is missing: install Debian's golang-github-osrg-gobgp-dev \
             (scripts/setup.sh does), or point XPE_GOBGP_PROTO at a directory holding gobgp.proto",
            missing.display()
        );
    }
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    if let Err(e) = tonic_build::configure()
        .build_server(false)
        .compile_protos(&files, &[dir.clone(), PathBuf::from(INCLUDE)])
    {
        panic!(
            "cannot compile GoBGP's API from {}: {e}\n(protoc comes from Debian's \
             protobuf-compiler, the google/protobuf includes from libprotobuf-dev: scripts/setup.sh \
             installs both)",
            dir.display()
        );
    }
}
