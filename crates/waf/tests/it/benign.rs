//! Benign corpus: realistic API traffic generated from varied templates
//! with a fixed-seed generator, plus hand-written awkward cases (names with
//! apostrophes, prose that mentions SQL and shell words, code snippets,
//! URLs to public hosts).

/// SplitMix64: a tiny fixed-seed generator so the corpus is identical on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// One benign request, owned.
#[derive(Clone, Debug)]
pub struct Owned {
    pub method: &'static str,
    pub path: String,
    pub query: String,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

pub const FIRST: &[&str] = &[
    "Siobhán",
    "Liam",
    "Zoë",
    "Mateo",
    "Aïsha",
    "Chen",
    "Priya",
    "D'Angelo",
    "Jean-Luc",
    "Ngozi",
    "Björn",
    "Olivia",
    "Mohammed",
    "Sakura",
    "José",
    "Anne-Marie",
    "Kwame",
    "Fatima",
    "Léa",
    "Dmitri",
    "Ma'ayan",
    "Rónán",
    "Tomás",
    "Élodie",
];
pub const LAST: &[&str] = &[
    "O'Brien",
    "O'Connor",
    "D'Souza",
    "McAllister",
    "van der Berg",
    "Nakamura",
    "García-López",
    "Smith",
    "Al-Farsi",
    "Ó Súilleabháin",
    "de la Cruz",
    "Nguyen",
    "Okonkwo",
    "Kowalski",
    "L'Estrange",
    "Müller",
    "Dell'Acqua",
    "St. John",
    "Ferreira",
    "O'Neill",
    "Johnson & Sons",
    "Brown",
];
pub const CITIES: &[&str] = &[
    "Dublin",
    "São Paulo",
    "Zürich",
    "Côte d'Ivoire",
    "L'Aquila",
    "Portland, OR",
    "Kraków",
    "Montréal",
    "St. John's",
    "Hà Nội",
    "Bengaluru",
    "Cape Town",
    "Reykjavík",
];
pub const PROSE: &[&str] = &[
    "I've been using this for a week and it's great, but the export button doesn't work on Safari.",
    "Please select the union members from the list and drop me a line when you're done.",
    "We'll update the table of contents before Friday -- promise!",
    "The script runs every night at 2am; if it fails, set an alert (priority: high).",
    "Can you delete my old address? I moved from 12 Baker St. to 221B last month.",
    "Order #4521 arrived damaged. The box said \"fragile\" but someone clearly ignored it.",
    "\"Where's my refund?\" is what I keep asking your support team.",
    "It's 50% off -- or was it 40%? Either way, the price didn't change at checkout.",
    "My daughter's school (St. Mary's) needs 30 copies; is there a bulk discount?",
    "Rock & roll never dies. Neither does my love for this band's first album.",
    "Q&A session moved to 3pm. Bring questions about R&D, AT&T's contract, and the roadmap.",
    "Tried both options: 'fast' and 'cheap'. Neither was both.",
    "If x > 3 and y < 5 then the discount applies, right? That's what the FAQ says.",
    "We select candidates from a pool of applicants, then update them by email.",
    "The cat sat on the mat; the dog sat on the rug. Classic.",
    "Cats & dogs welcome! No smoking, please.",
    "Use the \"Forgot password?\" link -- it'll send a reset email within 5 minutes.",
    "My username used to be bob_1985 but I changed it after the merger.",
    "Nice work!!! 10/10 would recommend :) <3",
    "The meeting notes are at https://docs.google.com/document/d/1aB2cD3eF4/edit -- have a look.",
    "Prices rose 3.5% year-on-year (see https://www.ons.gov.uk for the data).",
    "Is C# better than F# for this? I'm asking for a friend who's learning .NET.",
    "I'd like to drop the premium tier and keep only the basic plan from next month.",
    "The union of both sets is {1, 2, 3}; their intersection is empty.",
    "Our team's OKRs: ship v2, hire two engineers, and cut p99 latency by half.",
    "Call me at +1 (555) 010-7788 between 9–5, Mon–Fri.",
    "He said: 'I'll be there at 5' -- he wasn't.",
    "Temperatures hit 35°C in Seville; the A/C broke at 2pm.",
    "Half-and-half, 1/2 cup sugar, a pinch of salt; mix and chill for 2 hours.",
    "The invoice total is $1,299.00 (incl. VAT). Please pay by the 15th.",
    "Re: your question about the API -- yes, pagination uses cursors, not offsets.",
    "Feedback: the new dashboard is slower than the old one; loading takes ~4s.",
    "Where can I find the terms & conditions? The footer link 404s.",
    "Thanks, Siobhán! You're a star. We'll ship the fix in 1.4.2.",
    "I want to order by price, not by popularity. Is there a sort option?",
    "Sleep well, and don't forget: the backup window is 01:00–03:00 UTC.",
    "The recipe says 'or 2 eggs if large' -- how large is large?",
    "Exec summary: revenue up, churn down, morale... complicated.",
    "We moved the docs to https://example.org/docs/v2/getting-started#install.",
    "Email me at maria.o'hara@example.com if anything changes.",
    "Ping me on Slack in '#general' when it's deployed.",
    "Who am I? Just a user who wants dark mode. Please.",
    "The file is in Documents/Reports/2024/Q3 -- can't find it in the app.",
    "Press Ctrl+C, then Ctrl+V. If that fails, try right-click > Paste.",
    "Our office is at 1 Infinite Loop; parking is at the back.",
    "Vote 'yes' or 'no' -- nothing in between.",
    "The old API returned XML; the new one returns JSON. Much better.",
    "Bug: entering 'O'Reilly' as the publisher breaks the search page.",
    "Can I use emoji in my bio? 🎉🚀 Asking for science.",
    "1 or 2 tickets? I'm not sure yet, I'll let you know by Sunday.",
];
pub const CODE_COMMENTS: &[&str] = &[
    "Here's how I call it in Python:\n\n    resp = requests.get(url, timeout=5)\n    resp.raise_for_status()\n",
    "In JS I do `const items = data.filter(x => x.active).map(x => x.id);` and it works.",
    "The query I run is SELECT name, email FROM customers WHERE created_at > '2024-01-01' -- is that right?",
    "My config has `timeout_ms = 3000` and `retries = 3`, still timing out.",
    "Using curl: curl -H \"Authorization: Bearer <token>\" https://api.example.com/v1/orders",
    "Steps to reproduce:\n1. Open settings\n2. Click 'Export'\n3. Nothing happens",
    "Rust snippet: `let v: Vec<u32> = (0..10).filter(|x| x % 2 == 0).collect();`",
    "In the shell I ran npm install && npm test, and the tests pass locally.",
    "I set `max_connections=100` in postgresql.conf; the error persists.",
    "Stack trace says NullPointerException at OrderService.java:142.",
    "This regex works for me: ^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$",
    "Go code: if err != nil { return fmt.Errorf(\"load: %w\", err) }",
    "The SQL docs say UPDATE only changes matched rows; mine changes none.",
    "We import it like: import { Client } from '@example/sdk';",
    "Try git checkout -b fix/login-timeout and push the branch.",
    "I use `array.indexOf(x) >= 0` instead of includes() for old browsers.",
    "For Docker: docker run -p 8080:80 nginx:latest works fine.",
    "Kotlin: val names = users.map { it.name }.sorted()",
    "C#: var total = orders.Where(o => o.Paid).Sum(o => o.Amount);",
    "HTML email template uses a table layout because Outlook ignores flexbox.",
];
pub const PUBLIC_URLS: &[&str] = &[
    "https://github.com/rust-lang/rust/issues/12345",
    "https://www.example.com/products?id=42&ref=newsletter",
    "https://en.wikipedia.org/wiki/O%27Brien",
    "http://blog.example.org/2024/05/a-post-title/",
    "https://cdn.example.net/img/avatars/u123.png",
    "https://hooks.slack.com/services/T000/B000/XXXX",
    "https://api.stripe.example/v1/webhooks",
    "https://8.8.8.8/dns-query",
    "https://[2001:db8::1]/status",
    "https://maps.example.com/@53.3498,-6.2603,15z",
    "https://news.ycombinator.com/item?id=1",
    "https://docs.rs/regex/latest/regex/",
];
pub const SEARCH: &[&str] = &[
    "rock & roll",
    "c# vs f#",
    "what's new",
    "o'brien",
    "5 > 3",
    "<3 valentines",
    "100% cotton",
    "tom & jerry",
    "how to select multiple",
    "union square hotels",
    "drop shipping",
    "sleep apnea",
    "cat food",
    "ls 400 tire",
    "1/2 inch pipe",
    "\"exact phrase\"",
    "don't stop believin'",
    "a+b",
    "café au lait",
    "eval kit",
    "alert sound",
    "script writing course",
    "sql tutorial for beginners",
    "linux commands cheat sheet",
    "python -m venv",
];
pub const UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "okhttp/4.12.0",
    "MyApp/3.2.1 (iPhone; iOS 17.4; Scale/3.00)",
    "python-requests/2.31.0",
    "curl/8.5.0",
];
const TAGS: &[&str] = &[
    "bug",
    "feature-request",
    "billing",
    "ux",
    "api",
    "mobile",
    "urgent",
    "docs",
    "q&a",
];

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Percent-encodes for a query or form value.
pub fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn prose(r: &mut Rng) -> String {
    let n = 1 + r.below(3);
    let mut parts = Vec::new();
    for _ in 0..n {
        if r.below(5) == 0 {
            parts.push(r.pick(CODE_COMMENTS));
        } else {
            parts.push(r.pick(PROSE));
        }
    }
    parts.join(" ")
}

fn name(r: &mut Rng) -> String {
    format!("{} {}", r.pick(FIRST), r.pick(LAST))
}

fn common_headers(r: &mut Rng) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("user-agent", r.pick(UAS).to_owned()),
        ("accept", "application/json, text/plain, */*".to_owned()),
        ("accept-language", "en-GB,en;q=0.9,fr;q=0.8".to_owned()),
    ];
    if r.below(2) == 0 {
        h.push((
            "referer",
            format!("https://app.example.com/dashboard?tab={}", r.below(9)),
        ));
    }
    if r.below(2) == 0 {
        h.push((
            "cookie",
            format!(
                "session=s%3A{}.Zx9; theme=dark; consent=analytics%2Cads",
                r.next() % 1_000_000_007
            ),
        ));
    }
    if r.below(3) == 0 {
        h.push((
            "x-request-id",
            format!("{:016x}-{:04x}", r.next(), r.below(65536)),
        ));
    }
    h
}

/// Generates `n` benign requests.
pub fn corpus(n: usize, seed: u64) -> Vec<Owned> {
    let mut r = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let headers = common_headers(&mut r);
        let req = match i % 10 {
            0 => Owned {
                method: "POST",
                path: format!("/api/posts/{}/comments", r.below(10_000)),
                query: String::new(),
                headers,
                content_type: Some("application/json"),
                body: format!(
                    r#"{{"author":{},"body":{},"tags":[{},{}],"notify":{}}}"#,
                    json_str(&name(&mut r)),
                    json_str(&prose(&mut r)),
                    json_str(r.pick(TAGS)),
                    json_str(r.pick(TAGS)),
                    r.below(2) == 0
                )
                .into_bytes(),
            },
            1 => Owned {
                method: "PUT",
                path: format!("/api/users/{}", r.below(100_000)),
                query: String::new(),
                headers,
                content_type: Some("application/json; charset=utf-8"),
                body: format!(
                    r#"{{"display_name":{},"bio":{},"website":{},"location":{},"preferences":{{"newsletter":false,"language":"en-IE"}}}}"#,
                    json_str(&name(&mut r)),
                    json_str(&prose(&mut r)),
                    json_str(r.pick(PUBLIC_URLS)),
                    json_str(r.pick(CITIES))
                )
                .into_bytes(),
            },
            2 => Owned {
                method: "GET",
                path: "/api/search".to_owned(),
                query: format!("q={}&page={}&sort={}&lang=en", pct(r.pick(SEARCH)), r.below(20), r.pick(&["relevance", "price_asc", "-created_at"])),
                headers,
                content_type: None,
                body: Vec::new(),
            },
            3 => Owned {
                method: "POST",
                path: "/api/orders".to_owned(),
                query: String::new(),
                headers,
                content_type: Some("application/json"),
                body: format!(
                    r#"{{"customer":{{"name":{},"email":"{}@example.com"}},"shipping":{{"line1":"{} {}","line2":{},"city":{},"postcode":"D0{} X{}"}},"items":[{{"sku":"SKU-{}","qty":{}}},{{"sku":"SKU-{}","qty":1}}],"note":{}}}"#,
                    json_str(&name(&mut r)),
                    r.pick(&["mary.obrien", "j.doe", "sam_k", "chen.li", "d.angelo"]),
                    r.below(300),
                    r.pick(&["O'Connell St.", "Main Street", "Rue de l'Église", "Baker St", "5th Ave, Apt 4B"]),
                    json_str(r.pick(&["", "c/o Reception", "Unit 7; ring twice", "Floor 2 -- left door"])),
                    json_str(r.pick(CITIES)),
                    r.below(9),
                    r.below(99),
                    r.below(99_999),
                    1 + r.below(5),
                    r.below(99_999),
                    json_str(&prose(&mut r))
                )
                .into_bytes(),
            },
            4 => Owned {
                method: "POST",
                path: "/api/tickets".to_owned(),
                query: String::new(),
                headers,
                content_type: Some("application/json"),
                body: format!(
                    r#"{{"subject":{},"description":{},"severity":"{}","attachments":[{}]}}"#,
                    json_str(r.pick(&["Export broken", "Login timeout", "Question about the API", "Refund?", "Can't upload avatar"])),
                    json_str(&format!("{} {}", r.pick(CODE_COMMENTS), prose(&mut r))),
                    r.pick(&["low", "medium", "high"]),
                    json_str(r.pick(PUBLIC_URLS))
                )
                .into_bytes(),
            },
            5 => Owned {
                method: "POST",
                path: "/login".to_owned(),
                query: String::new(),
                headers,
                content_type: Some("application/x-www-form-urlencoded"),
                body: format!(
                    "username={}&password={}&remember_me=on",
                    pct(&format!("{}.{}", r.pick(FIRST), r.pick(LAST)).to_lowercase()),
                    pct(r.pick(&["P@ssw0rd!2024", "correct horse battery staple", "hunter2;really", "Tr0ub4dor&3", "s3cr3t'pass\"word", "a<b>c&d", "Zx!9#kL$mN%"]))
                )
                .into_bytes(),
            },
            6 => Owned {
                method: "POST",
                path: "/api/webhooks".to_owned(),
                query: String::new(),
                headers,
                content_type: Some("application/json"),
                body: format!(
                    r#"{{"callback_url":{},"events":["order.created","order.paid"],"secret":"whsec_{:x}","description":{}}}"#,
                    json_str(r.pick(PUBLIC_URLS)),
                    r.next(),
                    json_str(r.pick(PROSE))
                )
                .into_bytes(),
            },
            7 => Owned {
                method: "GET",
                path: format!("/api/products/{}/reviews", r.below(5000)),
                query: format!("limit={}&cursor={:x}&filter={}", 10 + r.below(40), r.next(), pct(r.pick(&["rating>=4", "verified=true", "lang:en OR lang:ga", "q=o'brien's"]))),
                headers,
                content_type: None,
                body: Vec::new(),
            },
            8 => Owned {
                method: "PATCH",
                path: format!("/api/projects/{}", r.below(900)),
                query: String::new(),
                headers,
                content_type: Some("application/merge-patch+json"),
                body: format!(
                    r#"{{"name":{},"readme":{},"settings":{{"visibility":"{}","default_branch":"main","topics":["rust","api","security"]}}}}"#,
                    json_str(r.pick(&["Rampart docs", "O'Reilly sample code", "Team 'Phoenix' tools", "select-box component"])),
                    json_str(&format!("# Project\n\n{}\n\n```\n{}\n```\n", prose(&mut r), r.pick(CODE_COMMENTS))),
                    r.pick(&["public", "private", "internal"])
                )
                .into_bytes(),
            },
            _ => Owned {
                method: "POST",
                path: "/api/messages".to_owned(),
                query: String::new(),
                headers,
                content_type: Some("application/x-www-form-urlencoded"),
                body: format!("to={}&subject={}&body={}", pct(&name(&mut r)), pct(r.pick(SEARCH)), pct(&prose(&mut r))).into_bytes(),
            },
        };
        out.push(req);
    }
    out
}
