fn main() {
    std::process::exit(worker_orcd::cli::main_with_args(std::env::args().collect()));
}
