use std::process::ExitCode;

fn main() -> ExitCode {
    steppps_pixel::main(std::env::args_os().collect())
}
