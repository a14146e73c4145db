use std::process::ExitCode;

fn main() -> ExitCode {
    steppps_prompt::main(std::env::args_os().collect())
}
