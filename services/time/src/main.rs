use std::process::ExitCode;

fn main() -> ExitCode {
    steppps_time::main(std::env::args_os().collect())
}
