use std::process::ExitCode;

fn main() -> ExitCode {
    steppps_psychology::main(std::env::args_os().collect())
}
