use std::process::ExitCode;

fn main() -> ExitCode {
    steppps_mgr::main(std::env::args_os().collect())
}
