//! nginx's build system (`config`, `config.make`). `scripts/build` and
//! `scripts/build-debian` build every module the suite loads with
//! `--add-dynamic-module`; this checks the other half: a static `--add-module` is refused
//! at configure time with the reason, not built into an nginx whose filter order is wrong.

use std::process::Command;

use nds_tests::root;

#[test]
fn static_add_module_is_refused_with_the_reason() {
    let built = root().join("target/nginx-build");
    assert!(
        built.join("auto/configure").exists(),
        "run scripts/build first (it leaves the vendored nginx source in {built:?})"
    );
    // The source without its objs/ (which holds the build and cargo's target directory).
    let dir = tempfile::tempdir().unwrap();
    let copy = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C '{}' --exclude=./objs -c . | tar -C '{}' -x",
            built.display(),
            dir.path().display()
        ))
        .status()
        .unwrap();
    assert!(copy.success());
    let out = Command::new("./auto/configure")
        .arg("--with-compat")
        .arg(format!("--add-module={}", root().display()))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "{}",
        text.lines().rev().take(8).collect::<Vec<_>>().join("\n")
    );
    assert!(!out.status.success(), "configure accepted --add-module");
    assert!(
        text.contains("ngx_http_docker_stream_module builds only as a dynamic module")
            && text.contains("--add-dynamic-module="),
        "{text}"
    );
}
