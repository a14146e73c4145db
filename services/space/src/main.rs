use std::process::ExitCode;

fn main() -> ExitCode {
    steppps_space::main(std::env::args_os().collect())
}
