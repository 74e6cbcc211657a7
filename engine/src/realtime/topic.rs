//! A subscription string: its topic (`posts/*`, `posts/RECORD_ID`, the deprecated `posts`)
//! and its `?options={"query":{...},"headers":{...}}`, normalised as PocketBase does.

use crate::go::query_pairs;
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// The request data a subscription's rule checks and enrichment see.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SubOptions {
    pub query: BTreeMap<String, String>,
    /// Names in snake case (`X-Token` → `x_token`), as `@request.headers.*` reads them.
    pub headers: BTreeMap<String, String>,
}

impl SubOptions {
    pub fn query(&self, key: &str) -> &str {
        self.query.get(key).map_or("", String::as_str)
    }

    /// Whether any option value refers to the auth record (then the subscribers' identities
    /// matter even where the rule alone would not care).
    pub fn mentions_auth(&self) -> bool {
        self.query
            .values()
            .chain(self.headers.values())
            .any(|v| v.contains("@request.auth"))
    }
}

/// A parsed subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The full string as the client sent it: also the event name of its messages.
    pub name: String,
    /// The part before the first `?`, matched exactly against the event's topics.
    pub topic: String,
    pub options: SubOptions,
    /// [`SubOptions::mentions_auth`], worked out once: the fan-out asks it for every
    /// subscriber of every event (two map walks per client per event otherwise).
    pub uses_auth: bool,
    /// Whether the options ask for an `expand` (its rule checks depend on the identity).
    pub expands: bool,
}

impl Subscription {
    pub fn parse(raw: &str) -> Subscription {
        let (topic, query) = match raw.split_once('?') {
            Some((t, q)) => (t, q),
            None => (raw, ""),
        };
        // a fragment is not part of the query
        let query = query.split('#').next().unwrap_or("");
        let mut options = SubOptions::default();
        let pairs = query_pairs(query);
        let raw_options = pairs
            .iter()
            .find(|(k, _)| k == "options")
            .map_or("", |(_, v)| v.as_str());
        if !raw_options.is_empty() {
            if let Ok(Json::Object(obj)) = serde_json::from_str::<Json>(raw_options) {
                if let Some(Json::Object(q)) = obj.get("query") {
                    for (k, v) in q {
                        options.query.insert(k.clone(), to_string(v));
                    }
                }
                if let Some(Json::Object(h)) = obj.get("headers") {
                    for (k, v) in h {
                        options
                            .headers
                            .insert(crate::go::snakecase(k), to_string(v));
                    }
                }
            }
        }
        Subscription {
            name: raw.to_string(),
            topic: topic.to_string(),
            uses_auth: options.mentions_auth(),
            expands: !options.query("expand").is_empty(),
            options,
        }
    }
}

/// `cast.ToString` of a decoded JSON value (objects and arrays give "").
fn to_string(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => crate::records::value::go_float_string(f),
            _ => n.to_string(),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_options() {
        let s = Subscription::parse("posts/*");
        assert_eq!((s.topic.as_str(), s.options.query.len()), ("posts/*", 0));
        let raw = r#"posts/abc?options={"query":{"filter":"a>1","n":2,"b":true,"o":{}},"headers":{"X-Token":"t","xCustomName":"c"}}"#;
        let s = Subscription::parse(raw);
        assert_eq!(s.name, raw);
        assert_eq!(s.topic, "posts/abc");
        assert_eq!(s.options.query("filter"), "a>1");
        assert_eq!(s.options.query("n"), "2");
        assert_eq!(s.options.query("b"), "true");
        assert_eq!(s.options.query("o"), "");
        assert_eq!(s.options.headers["x_token"], "t");
        assert_eq!(s.options.headers["x_custom_name"], "c");
        assert!(!s.uses_auth && !s.expands);
        let s = Subscription::parse(
            r#"posts/*?options={"query":{"expand":"rel"},"headers":{"x":"@request.auth.id"}}"#,
        );
        assert!(s.uses_auth && s.expands);
        // percent-encoded (as the JS SDK sends it) and a broken options value
        let s =
            Subscription::parse("posts?options=%7B%22query%22%3A%7B%22expand%22%3A%22rel%22%7D%7D");
        assert_eq!(
            (s.topic.as_str(), s.options.query("expand")),
            ("posts", "rel")
        );
        let s = Subscription::parse("posts/*?options={broken");
        assert!(s.options.query.is_empty());
    }

    #[test]
    fn snake() {}
}
