//! The `tessera` binary: parse arguments, then hand over to the library's CLI.

fn main() {
    std::process::exit(tessera_host::cli::main());
}
