//! `hardening-ratelimit --listen ADDR --redis URL --limits FILE`: see the library.
//! Exit status 2 for bad arguments or a bad limits file, 1 when serving fails.

use std::process::ExitCode;

use hardening_ratelimit::{Args, Limits, cli::USAGE};

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => return fail(2, &format!("{e}\n{USAGE}")),
    };
    let limits = match Limits::load(&args.limits) {
        Ok(limits) => limits,
        Err(e) => return fail(2, &format!("bad limits file: {e}")),
    };
    // Only the URL is checked here; Redis itself may come up later.
    let redis = match redis::Client::open(args.redis.as_str()) {
        Ok(client) => client,
        Err(e) => return fail(2, &format!("bad --redis URL: {e}")),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(1, &format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(hardening_ratelimit::run(&args.listen, redis, limits)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, &e),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("hardening-ratelimit: {message}");
    ExitCode::from(code)
}
