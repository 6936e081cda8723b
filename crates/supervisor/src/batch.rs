//! Coalescing of per-topic requests into one broker request per round.
//!
//! Every topic task asks its own questions (does my target topic exist? what
//! are my partitions' watermarks?), which keeps a task's logic linear and its
//! failures its own. With a thousand topics starting at once that would be
//! thousands of round trips. A [`Batcher`] answers them in rounds instead:
//! while one round is in flight, new requests queue, and the next round takes
//! all of them in one request. A lone request is served at once, so one topic
//! pays no delay for the batching.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

type Request<Q, A> = (Q, oneshot::Sender<A>);

/// A handle to one coalescing worker. The worker stops once every handle is
/// dropped.
pub(crate) struct Batcher<Q, A> {
    requests: mpsc::Sender<Request<Q, A>>,
}

impl<Q, A> Batcher<Q, A>
where
    Q: Send + 'static,
    A: Send + 'static,
{
    /// Starts the worker. `round` answers a batch of at most `max_round`
    /// questions with exactly one answer per question, in order; questions
    /// beyond `max_round` wait for the next round.
    pub fn spawn<F, Fut>(max_round: usize, round: F) -> Self
    where
        F: FnMut(Vec<Q>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<A>> + Send,
    {
        Self::spawn_paced(max_round, Duration::ZERO, round)
    }

    /// As [`Batcher::spawn`], with rounds starting at least `min_gap` apart:
    /// for questions that are asked again and again until the answer
    /// changes, so that a thousand askers cost one request per `min_gap`.
    pub fn spawn_paced<F, Fut>(max_round: usize, min_gap: Duration, mut round: F) -> Self
    where
        F: FnMut(Vec<Q>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<A>> + Send,
    {
        let (requests, mut queue) = mpsc::channel::<Request<Q, A>>(max_round);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max_round);
            let mut next_round = tokio::time::Instant::now();
            while queue.recv_many(&mut batch, max_round).await > 0 {
                if !min_gap.is_zero() {
                    tokio::time::sleep_until(next_round).await;
                    // Whoever asked while this round waited joins it.
                    while batch.len() < max_round {
                        match queue.try_recv() {
                            Ok(request) => batch.push(request),
                            Err(_) => break,
                        }
                    }
                    next_round = tokio::time::Instant::now() + min_gap;
                }
                let (questions, replies): (Vec<Q>, Vec<_>) = batch.drain(..).unzip();
                let answers = round(questions).await;
                debug_assert_eq!(answers.len(), replies.len());
                for (reply, answer) in replies.into_iter().zip(answers) {
                    // The asker may have been cancelled meanwhile.
                    let _ = reply.send(answer);
                }
            }
        });
        Self { requests }
    }

    /// Asks one question; `None` if the worker has stopped (its round
    /// panicked or the flow is shutting down).
    pub async fn ask(&self, question: Q) -> Option<A> {
        let (reply, answer) = oneshot::channel();
        self.requests.send((question, reply)).await.ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_questions_share_rounds_and_get_their_own_answers() {
        let rounds = Arc::new(AtomicUsize::new(0));
        let counted = rounds.clone();
        let batcher = Arc::new(Batcher::spawn(1000, move |qs: Vec<u32>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                // A round takes a while, as a broker request does.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                qs.into_iter().map(|q| q * 10).collect::<Vec<_>>()
            }
        }));
        let askers: Vec<_> = (0..500u32)
            .map(|q| {
                let b = batcher.clone();
                tokio::spawn(async move { (q, b.ask(q).await) })
            })
            .collect();
        for asker in askers {
            let (q, answer) = asker.await.unwrap();
            assert_eq!(answer, Some(q * 10));
        }
        let n = rounds.load(Ordering::SeqCst);
        assert!(
            (1..=5).contains(&n),
            "500 concurrent questions took {n} rounds"
        );
    }

    #[tokio::test]
    async fn rounds_respect_their_size_and_pace() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = Arc::new(Batcher::spawn_paced(
            10,
            std::time::Duration::from_millis(30),
            move |qs: Vec<u32>| {
                seen.lock()
                    .unwrap()
                    .push((qs.len(), tokio::time::Instant::now()));
                async move { qs }
            },
        ));
        let askers: Vec<_> = (0..45u32)
            .map(|q| {
                let b = batcher.clone();
                tokio::spawn(async move { b.ask(q).await })
            })
            .collect();
        for (q, asker) in askers.into_iter().enumerate() {
            assert_eq!(asker.await.unwrap(), Some(q as u32));
        }
        let sizes = sizes.lock().unwrap();
        assert!(sizes.len() >= 5, "45 questions in rounds of 10: {sizes:?}");
        assert!(sizes.iter().all(|(n, _)| *n <= 10), "{sizes:?}");
        for pair in sizes.windows(2) {
            let gap = pair[1].1 - pair[0].1;
            assert!(
                gap >= std::time::Duration::from_millis(29),
                "rounds {gap:?} apart"
            );
        }
    }

    #[tokio::test]
    async fn a_lone_question_is_answered_without_waiting_for_company() {
        let batcher = Batcher::spawn(8, |qs: Vec<&'static str>| async move {
            qs.into_iter().map(str::len).collect::<Vec<_>>()
        });
        let answered = tokio::time::timeout(std::time::Duration::from_secs(1), batcher.ask("four"));
        assert_eq!(answered.await.unwrap(), Some(4));
    }
}
