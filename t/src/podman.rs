//! Podman's Docker-compatible service (`podman system service`) of a test's own: its own
//! storage (vfs), run root, socket and configuration, containers without networking
//! (`netns = "none"`), so that nothing on the machine is touched; stopped, its containers
//! removed and its files deleted on drop.
//!
//! Podman's default rlimits (nofile 1048576) exceed the hard limits of machines like
//! this one, where every container then fails with `error setting rlimit`; the
//! configuration sets limits within them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::{docker, Input};
use crate::Cli;

pub struct PodmanService {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PodmanService {
    /// Starts the service; returns once it answers `/_ping`. Panics with what to install
    /// when podman is missing (`scripts/test` installs it).
    pub fn start() -> PodmanService {
        let dir = tempfile::Builder::new()
            .prefix("nds-podman")
            .tempdir_in("/tmp")
            .unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("containers.conf"),
            "[containers]\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             netns = \"none\"\n\
             [engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n",
        )
        .unwrap();
        std::fs::write(
            p.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/storage\"\n",
                p.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(p.join("podman.log")).unwrap();
        let sock = p.join("podman.sock");
        let child = Command::new("podman")
            .env("CONTAINERS_CONF", p.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", p.join("storage.conf"))
            .arg("--root")
            .arg(p.join("storage"))
            .arg("--runroot")
            .arg(p.join("run"))
            .arg("--tmpdir")
            .arg(p.join("tmp"))
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", sock.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("start podman ({e}): install Debian's podman (scripts/test does)")
            });
        let mut s = PodmanService {
            dir,
            child: Some(child),
        };
        let t0 = Instant::now();
        while !s.answers() {
            if let Some(status) = s.child.as_mut().unwrap().try_wait().unwrap() {
                s.child = None;
                panic!("podman exited ({status}):\n{}", s.log());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "podman did not answer:\n{}",
                s.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
        s
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("podman.sock")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock().display())
    }

    fn answers(&self) -> bool {
        crate::dockerd::answers_ping(&self.sock())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("podman.log")).unwrap_or_default()
    }

    fn cli(&self, args: &[&str], input: Input) -> crate::cli::Out {
        docker(
            &Cli::setup(),
            &self.host(),
            args,
            input,
            Duration::from_secs(60),
        )
    }

    /// Copies the test image from the shared daemon.
    pub fn load_test_image(&self) {
        crate::dockerd::load_test_image_into(&self.host());
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        // Containers first: their conmon processes outlive the service.
        let ps = self.cli(&["ps", "-aq"], Input::None);
        let ids = ps.stdout_str();
        let mut args = vec!["rm", "-f"];
        args.extend(ids.split_whitespace());
        if args.len() > 2 {
            let _ = self.cli(&args, Input::None);
        }
        if let Some(mut c) = self.child.take() {
            // SAFETY: a signal to the podman this test started.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let t0 = Instant::now();
            while c.try_wait().ok().flatten().is_none() && t0.elapsed() < Duration::from_secs(10) {
                thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // conmon and runc processes of ours that outlived the service (exec sessions a
        // killed client left behind): their command lines name our directory.
        let ours = self.dir.path().to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&ours) {
                // SAFETY: a signal to a process started for this test's podman.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // vfs layers are plain directories, but a container's rootfs may still be
        // mounted if it was killed hard.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| std::path::Path::new(m).starts_with(self.dir.path()))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for m in points {
            let c = std::ffi::CString::new(m).unwrap();
            // SAFETY: a NUL-terminated path below our own directory.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
