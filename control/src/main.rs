//! `xpe`: the MPLS/VRF provider-edge router's command line.

fn main() {
    // The handles, not their locks: `xpe run` lives for hours with worker, control and
    // neighbour threads, and a lock held here for the whole run would block any of them that
    // writes to stderr (a panic message included) forever.
    let code = xpe_control::cli::run(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    std::process::exit(code);
}
