//! `faas-emulator [--listen ADDR] [--fixed]`: serves the emulated functions
//! until interrupted. Prints `faas-emulator listening on http://ADDR` once
//! bound, so scripts can wait for that line instead of sleeping. `--fixed`
//! is the benchmark endpoint instead: one canned Lambda proxy result for
//! every request, on a single thread (`make bench` pins it to one core).

use std::io::Write;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:8090".to_string();
    let mut fixed = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().unwrap_or(listen),
            "--fixed" => fixed = true,
            "-h" | "--help" => {
                println!(
                    "usage: faas-emulator [--listen ADDR] [--fixed]   (default 127.0.0.1:8090)"
                );
                return Ok(());
            }
            other => {
                eprintln!("faas-emulator: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let runtime = if fixed {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_all()
    .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        println!(
            "faas-emulator listening on http://{}",
            listener.local_addr()?
        );
        std::io::stdout().flush()?;
        let server = async move {
            if fixed {
                faas_emulator::fixed::serve(listener).await
            } else {
                faas_emulator::http::serve(listener, faas_emulator::handler()).await
            }
        };
        tokio::select! {
            _ = server => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}
