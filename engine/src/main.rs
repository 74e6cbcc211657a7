fn main() {
    std::process::exit(pocketbun_engine::cli::main());
}
