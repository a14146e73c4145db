use std::process::ExitCode;

fn main() -> ExitCode {
    quantumd::main(std::env::args_os().collect())
}
