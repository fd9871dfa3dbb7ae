//! argon2id verification on a few dedicated threads, each with its own
//! reusable block memory.
//!
//! A check costs tens of milliseconds of CPU and m (19 MiB by default) of
//! memory by design. Run on tokio's blocking pool, a burst of logins spread
//! that memory over as many threads, and glibc kept each thread's arena
//! (megabytes per logged-in session in the idle benchmark); allocating and
//! freeing m per check on fixed threads was no better with glibc. Here at
//! most `threads` checks run at once, each in memory reserved when its
//! thread starts (sized for the configured hashes) and reused, so the cost
//! is fixed (threads x m, 2 x 19 MiB on a 2-core machine) however many
//! sessions log in, and the runtime's worker threads never hash a costly
//! hash. A hash of at most `INLINE_WORK` (memory x passes, tens of
//! microseconds) is checked on the calling thread: handing it to a hash
//! thread and back cost more than the check.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

/// The most work (KiB of memory x passes) a check may take to be made on
/// the calling thread: 64 KiB-passes, about 15-30 us of CPU here, less than
/// the two thread wake-ups of a hand-off.
const INLINE_WORK: u64 = 64;

struct Job {
    hash: String,
    password: String,
    done: oneshot::Sender<bool>,
}

/// The verification threads.
#[derive(Debug, Clone)]
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Hasher {
    /// Start `threads` verification threads (at least one), each reserving
    /// `reserve` argon2 blocks (1 KiB each) up front.
    pub fn new(threads: usize, reserve: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut blocks: Vec<Block> = vec![Block::default(); reserve];
                    loop {
                        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                            Ok(j) => j,
                            Err(_) => return, // the server is gone
                        };
                        let ok = verify_with(&job.hash, &job.password, &mut blocks);
                        let _ = job.done.send(ok);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-check thread");
            }
        }
        Hasher { jobs: tx }
    }

    /// Check `password` against a PHC string.
    pub async fn verify(&self, hash: String, password: String) -> Result<bool, String> {
        if work(&hash) <= INLINE_WORK {
            return Ok(verify_with(&hash, &password, &mut Vec::new()));
        }
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job {
                hash,
                password,
                done,
            })
            .map_err(|_| "the password-check threads are gone".to_owned())?;
        result
            .await
            .map_err(|_| "a password-check thread failed".to_owned())
    }
}

/// The blocks a PHC string's check needs (0 if it is not argon2).
pub fn blocks_needed(hash: &str) -> usize {
    PasswordHash::new(hash)
        .ok()
        .and_then(|h| Params::try_from(&h).ok())
        .map_or(0, |p| p.block_count())
}

/// A check's work in KiB of memory x passes; 0 for a string that is not
/// an argon2 hash (its check fails at once).
fn work(hash: &str) -> u64 {
    PasswordHash::new(hash)
        .ok()
        .and_then(|h| Params::try_from(&h).ok())
        .map_or(0, |p| p.block_count() as u64 * u64::from(p.t_cost()))
}

/// Verify in `blocks`, growing it to the hash's memory cost when needed.
fn verify_with(hash: &str, password: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(h) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(alg), Ok(params)) = (Algorithm::try_from(h.algorithm), Params::try_from(&h)) else {
        return false;
    };
    let version = match h.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let need = params.block_count();
    if blocks.len() < need {
        blocks.resize(need, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(alg, version, params);
    if argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..need])
        .is_err()
    {
        return false;
    }
    // Output's equality is constant-time.
    Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_like_the_argon2_crate() {
        let h = Hasher::new(2, 0);
        let hash = crate::auth::users::hash_password("right");
        assert_eq!(h.verify(hash.clone(), "right".into()).await, Ok(true));
        assert_eq!(h.verify(hash.clone(), "wrong".into()).await, Ok(false));
        assert_eq!(h.verify("not a hash".into(), "x".into()).await, Ok(false));
        // Other parameters (cheaper) in the same thread's memory.
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        assert_eq!(h.verify(cheap.clone(), "pw".into()).await, Ok(true));
        assert_eq!(h.verify(cheap, "pW".into()).await, Ok(false));
    }
}

#[cfg(test)]
mod inline_tests {
    use super::*;

    /// A hasher whose threads are gone: only inline checks can answer.
    fn threadless() -> Hasher {
        let (jobs, _) = mpsc::channel();
        Hasher { jobs }
    }

    #[tokio::test]
    async fn cheap_hashes_are_checked_inline_and_costly_ones_on_the_threads() {
        let h = threadless();
        let cheap = crate::auth::users::hash_password_with("pw", 8, 1).unwrap();
        assert_eq!(work(&cheap), 8);
        assert_eq!(h.verify(cheap.clone(), "pw".into()).await, Ok(true));
        assert_eq!(h.verify(cheap, "pW".into()).await, Ok(false));
        let limit = crate::auth::users::hash_password_with("pw", 32, 2).unwrap();
        assert_eq!(work(&limit), INLINE_WORK);
        assert_eq!(h.verify(limit, "pw".into()).await, Ok(true));
        // Past the limit (argon2 rounds memory to whole sync points of 4
        // blocks): sent to the (missing) threads.
        let costly = crate::auth::users::hash_password_with("pw", 68, 1).unwrap();
        assert_eq!(work(&costly), 68);
        assert!(h.verify(costly, "pw".into()).await.is_err());
        assert_eq!(h.verify("not a hash".into(), "x".into()).await, Ok(false));
    }
}
