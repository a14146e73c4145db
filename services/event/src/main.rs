use std::process::ExitCode;

fn main() -> ExitCode {
    steppps_event::main(std::env::args_os().collect())
}
