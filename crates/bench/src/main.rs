//! The `tusgate-bench` binary: the load generator on its own, the same as `tusgate bench`.

fn main() -> std::process::ExitCode {
    tusgate_bench::main_with("tusgate-bench", std::env::args().skip(1))
}
