//! `xpe`: the MPLS/VRF provider-edge router's command line.

fn main() {
    let code = xpe_control::cli::run(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
