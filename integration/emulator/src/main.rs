//! `faas-emulator [--listen ADDR]`: serves the emulated functions until
//! interrupted. Prints `faas-emulator listening on http://ADDR` once bound,
//! so scripts can wait for that line instead of sleeping.

use std::io::Write;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:8090".to_string();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().unwrap_or(listen),
            "-h" | "--help" => {
                println!("usage: faas-emulator [--listen ADDR]   (default 127.0.0.1:8090)");
                return Ok(());
            }
            other => {
                eprintln!("faas-emulator: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "faas-emulator listening on http://{}",
        listener.local_addr()?
    );
    std::io::stdout().flush()?;
    tokio::select! {
        _ = faas_emulator::http::serve(listener, faas_emulator::handler()) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
