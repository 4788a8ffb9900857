//! Data directory checks, tightening and the lock, on real folders. The test process keeps its
//! usual umask (0o022), so what is created owner-only here is so by explicit mode.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn a_new_data_dir_and_its_lock_file_are_owner_only() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("a/data");
    let lock = take(&dir, Role::Server).await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(LOCK_FILE)), 0o600);
    let text = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
    assert_eq!(text, format!("{} server\n", std::process::id()));
    drop(lock);
}

#[tokio::test]
async fn a_data_dir_others_can_write_is_refused_and_left_alone() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    for wide in [0o777, 0o770, 0o702] {
        chmod(&dir, wide);
        let err = take(&dir, Role::Server).await.unwrap_err();
        assert!(
            matches!(err, DataDirError::Writable { mode, .. } if mode == wide),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&dir.display().to_string()) && text.contains(&format!("mode {wide:04o}")),
            "{text}"
        );
        assert_eq!(mode(&dir), wide, "a refused folder is not changed");
        assert!(!dir.join(LOCK_FILE).exists());
    }
}

#[tokio::test]
async fn a_data_dir_of_another_user_is_refused() {
    if effective_uid() != 0 {
        // Only root can give a folder away; CI runs as root.
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let err = take(&dir, Role::Server).await.unwrap_err();
    assert!(
        matches!(
            err,
            DataDirError::Owner {
                owner: 65534,
                uid: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("belongs to uid 65534"), "{err}");
}

#[tokio::test]
async fn wider_modes_left_by_older_versions_are_tightened() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    std::fs::create_dir_all(dir.join("outbox")).unwrap();
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    std::fs::write(dir.join("outbox/1-aa.eml"), "reset link").unwrap();
    std::fs::write(dir.join("tls/localhost.crt"), "cert").unwrap();
    std::fs::write(dir.join("tessera.sqlite"), "").unwrap();
    std::fs::write(dir.join("server-secret"), [0u8; 32]).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("link")).unwrap();
    for p in ["", "outbox", "tls"] {
        chmod(&dir.join(p), 0o755);
    }
    for p in ["outbox/1-aa.eml", "tls/localhost.crt", "tessera.sqlite"] {
        chmod(&dir.join(p), 0o644);
    }
    chmod(&dir.join("server-secret"), 0o644);
    let etc = mode(Path::new("/etc/hostname"));
    let _lock = take(&dir, Role::Server).await.unwrap();
    for p in ["", "outbox", "tls"] {
        assert_eq!(mode(&dir.join(p)), 0o700, "{p}");
    }
    for p in ["outbox/1-aa.eml", "tls/localhost.crt", "tessera.sqlite"] {
        assert_eq!(mode(&dir.join(p)), 0o600, "{p}");
    }
    assert_eq!(
        mode(&dir.join("server-secret")),
        0o644,
        "the secret's loader refuses it instead"
    );
    assert_eq!(
        mode(Path::new("/etc/hostname")),
        etc,
        "symlinks not followed"
    );
}

#[tokio::test]
async fn one_holder_at_a_time_and_the_refusal_names_it() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let first = take(&dir, Role::Server).await.unwrap();
    assert_eq!(first.path(), dir);
    let err = take(&dir, Role::Server).await.unwrap_err();
    let me = Some(std::process::id());
    assert!(
        matches!(err, DataDirError::Locked { holder: Holder { pid, role: Some(Role::Server) }, .. } if pid == me),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("a Tessera server (pid {})", std::process::id())),
        "{err}"
    );
    assert_eq!(
        holder(&dir),
        Some(Holder {
            pid: me,
            role: Some(Role::Server)
        })
    );
    drop(first);
    assert_eq!(holder(&dir), None, "released on drop");
    let command = try_take(&dir, Role::Command).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap(),
        format!("{} command\n", std::process::id()),
        "the previous record is replaced, not appended to"
    );
    drop(command);
}

#[tokio::test]
async fn a_server_waits_for_a_user_command_but_not_for_ever() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let command = take(&dir, Role::Command).await.unwrap();
    let wait = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = take_waiting(&dir, Role::Server, wait).await.unwrap_err();
    assert!(started.elapsed() >= wait, "{:?}", started.elapsed());
    assert!(
        err.to_string().contains("a `tessera user` command"),
        "{err}"
    );
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(command);
    });
    let _server = take_waiting(&dir, Role::Server, Duration::from_secs(10))
        .await
        .unwrap();
    release.join().unwrap();
}

#[test]
fn tighten_reports_what_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    chmod(&file, 0o640);
    assert_eq!(tighten(&file).unwrap(), Some((0o640, 0o600)));
    assert_eq!(tighten(&file).unwrap(), None);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
}
