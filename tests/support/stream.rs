//! A reader of the live stream (Server-Sent Events): its events, one at a time.

use serde_json::Value;

/// An open live stream.
pub struct Stream {
    response: reqwest::Response,
    text: String,
}

impl Stream {
    /// Opens `url` (`…/api/v1/sites/<id>/live`) and checks the 200.
    pub async fn open(http: &reqwest::Client, url: &str) -> Stream {
        let response = http.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        Stream {
            response,
            text: String::new(),
        }
    }

    /// The next event (not a keep-alive), within `wait`.
    pub async fn next(&mut self, wait: std::time::Duration) -> (String, Value) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                if block.starts_with(':') {
                    continue;
                }
                let mut lines = block.lines();
                let event = lines.next().unwrap().strip_prefix("event: ").unwrap();
                let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
                return (event.to_owned(), serde_json::from_str(data).unwrap());
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream stays open");
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// The views of a snapshot's last minutes, summed.
pub fn views(snapshot: &Value) -> i64 {
    snapshot["views_last_minutes"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["views"].as_i64()).sum())
        .unwrap_or(0)
}
