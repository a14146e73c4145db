use std::process::ExitCode;

fn main() -> ExitCode {
    steppps_script::main(std::env::args_os().collect())
}
