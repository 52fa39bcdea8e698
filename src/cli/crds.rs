use std::io::Write;
use std::process::ExitCode;

pub fn run() -> ExitCode {
    let yaml = crate::api::crds_yaml();
    match std::io::stdout().write_all(yaml.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("securescore crds: cannot write to stdout: {err}");
            ExitCode::from(2)
        }
    }
}
