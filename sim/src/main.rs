//! `tiktok-sim`: runs the simulator as a process for `make dev`.
//! Env: SIM_PORT (9797), SIM_CLIENT_KEY, SIM_CLIENT_SECRET (the values in .dev.vars),
//! SIM_REDIRECT_URIS (comma-separated registered redirect URIs, exact strings).

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let port: u16 = var("SIM_PORT", "9797").parse().unwrap_or(9797);
    let key = var("SIM_CLIENT_KEY", "sim-client-key");
    let secret = var("SIM_CLIENT_SECRET", "sim-client-secret");
    let redirects = var("SIM_REDIRECT_URIS", "http://127.0.0.1:8787/oauth/callback/");
    let sim = tiktok_sim::Sim::start(&key, &secret, port).await?;
    sim.log_calls(true);
    for uri in redirects
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        sim.register_redirect_uri(uri);
    }
    println!(
        "TikTok simulator listening on {} (API base {}, redirect URIs {redirects})",
        sim.origin,
        sim.api_base()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
