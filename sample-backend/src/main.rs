//! The demo's sample API: `sample-backend [--listen 127.0.0.1:3000]`.

fn main() {
    let mut listen = String::from("127.0.0.1:3000");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(addr)) => listen = addr,
            _ => {
                eprintln!("usage: sample-backend [--listen ADDR:PORT]");
                std::process::exit(2);
            }
        }
    }
    match sample_backend::Backend::bind(&listen) {
        Ok(backend) => {
            println!("sample-backend listening on {}", backend.addr());
            backend.serve_forever();
        }
        Err(e) => {
            eprintln!("sample-backend: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    }
}
