fn main() {
    std::process::exit(orcd_engine::cli::main_with_args(std::env::args().collect()));
}
