//! The `tessera` binary: parse arguments, then hand over to the library's CLI.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(tessera_host::cli::main());
}
