//! `ballast lab --quick` end to end: real lab backends, Ballast, HAProxy and nginx processes,
//! every scenario. It checks that the harness works (each proxy served traffic, each fault was
//! injected and seen, the report was written), never how fast anything was.
//!
//! Needs `haproxy` and `nginx` installed (Debian packages; `.ci/run` installs them).

use std::process::Command;

#[test]
fn quick_lab_runs_every_scenario_against_every_proxy() {
    for tool in ["haproxy", "nginx"] {
        let found = Command::new(tool).arg("-v").output().is_ok();
        assert!(
            found,
            "{tool} is not installed: `apt-get install -y haproxy nginx` (the lab compares against them)"
        );
    }
    let out = std::env::temp_dir().join(format!("ballast-lab-quick-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let res = Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(["lab", "--quick", "--no-progress", "--out"])
        .arg(&out)
        .output()
        .expect("run ballast lab");
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        res.status.success(),
        "ballast lab --quick failed ({}):\n{stderr}\n{}",
        res.status,
        String::from_utf8_lossy(&res.stdout)
    );

    let json = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    let report: serde_json::Value = serde_json::from_str(&json).expect("results.json is JSON");
    let scenarios = report["scenarios"].as_array().expect("scenarios array");
    let names: Vec<&str> = scenarios
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "baseline",
            "backend-crash",
            "backend-hang",
            "slow-backend",
            "error-storm",
            "overload",
            "total-outage",
            "reload",
            "slow-clients",
            "flood"
        ]
    );
    for s in scenarios {
        let name = s["name"].as_str().unwrap_or("?");
        let runs = s["runs"].as_array().expect("runs");
        for target in ["ballast", "haproxy", "nginx"] {
            let run = runs
                .iter()
                .find(|r| r["target"] == target)
                .unwrap_or_else(|| panic!("{name}: no {target} run"));
            let ok = run["load"]["ok"].as_u64().unwrap_or(0)
                + run["groups"]
                    .as_object()
                    .map_or(0, |g| g.values().filter_map(|v| v["ok"].as_u64()).sum());
            assert!(ok > 0, "{name}: {target} served no traffic");
            assert!(
                run["backend_requests"].as_u64().unwrap_or(0) > 0,
                "{name}: {target}: the backends counted no requests"
            );
            if name != "baseline" {
                let fault = &run["fault"];
                assert_eq!(
                    fault["injected"], true,
                    "{name}: {target}: fault not injected: {fault}"
                );
                assert_eq!(
                    fault["seen"], true,
                    "{name}: {target}: fault not seen: {fault}"
                );
            }
        }
        assert!(
            out.join(format!("{name}.svg")).is_file() && out.join(format!("{name}.md")).is_file(),
            "{name}: plot or page missing"
        );
    }
    let readme = std::fs::read_to_string(out.join("README.md")).expect("README.md written");
    assert!(readme.contains("HAProxy") && readme.contains("nginx"));
    let _ = std::fs::remove_dir_all(&out);
}
