//! `xpe`: the MPLS/VRF provider-edge router's command line.

// mimalloc rather than glibc's malloc: after a million-route config has been parsed and
// freed, glibc's bins made each small compile that followed take 20-60 ms of sorting freed
// chunks (measured on route changes under a 1M-route VRF).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
