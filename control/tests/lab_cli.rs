//! The lab commands (`xpe gen`, `xpe xdp-fwd`; their code is in `xpe-lab`) as the `xpe` CLI
//! parses and reports them: a bad value is one sentence and exit status 1 before anything is
//! touched, and the bench-only command stays out of the main help. No root needed.

use xpe_control::cli;

fn run_cli(args: &[&str]) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = cli::run(
        std::iter::once("xpe").chain(args.iter().copied()),
        &mut out,
        &mut err,
    );
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[test]
fn a_bad_gen_argument_exits_1_with_one_sentence_and_prints_nothing_else() {
    let (code, out, err) = run_cli(&[
        "gen",
        "--dev",
        "veth0",
        "--src",
        "198.18.0.1",
        "--dst",
        "198.19.0.1",
        "--size",
        "70000",
    ]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(
        err,
        "xpe: --size must be a frame length in bytes (without the FCS) from 60 to 9000, not '70000'\n"
    );
}

#[test]
fn bad_xdp_fwd_values_exit_1_with_one_sentence_before_anything_is_touched() {
    for (args, expected) in [
        (
            &["xdp-fwd", "in0", "out0", "--dst-mac", "02:00:00:00:01"][..],
            "xpe: --dst-mac must be a MAC address like 02:00:00:00:01:01, not '02:00:00:00:01'\n",
        ),
        (
            &["xdp-fwd", "in0", "out0", "--dst-mac", "02:00:00:00:00:02", "--src-mac", "x"],
            "xpe: --src-mac must be a MAC address like 02:00:00:00:01:01, not 'x'\n",
        ),
        (
            &["xdp-fwd", "in0", "out0", "--dst-mac", "02:00:00:00:00:02", "--duration", "0"],
            "xpe: --duration must be a number of seconds above 0 and at most 31536000 (like 5 or 0.5), not '0'\n",
        ),
    ] {
        assert_eq!(run_cli(args), (1, String::new(), expected.to_string()));
    }
}

#[test]
fn xdp_fwd_is_a_bench_tool_hidden_from_the_main_help() {
    let (code, help, _) = run_cli(&["--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("sink") && !help.contains("xdp-fwd"), "{help}");
    let (code, help, _) = run_cli(&["xdp-fwd", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("--dst-mac <MAC>"), "{help}");
}
