//! The built-in rule set, written for Rampart (not copied from CRS).
//!
//! Ids: 41xx SQL injection, 42xx XSS, 43xx path traversal, 44xx command
//! injection, 45xx SSRF, 3xxx evasion. Engine checks (limits, allow-lists,
//! mass assignment, residual encoding) have fixed ids in [`crate::ids`].
//!
//! PL1 rules aim at near-zero false positives on prose and code comments;
//! PL2–PL4 add broader patterns that catch more and misfire more.

use crate::policy::{AttackClass as C, Matcher, Rule, Severity as S, Target as T};

fn regex(id: u32, class: C, severity: S, paranoia: u8, message: &str, targets: &[T], pattern: &str, triggers: &[&str]) -> Rule {
    Rule {
        id,
        class,
        severity,
        paranoia,
        message: message.to_owned(),
        targets: targets.to_vec(),
        matcher: Matcher::Regex {
            pattern: pattern.to_owned(),
            triggers: triggers.iter().map(|s| (*s).to_owned()).collect(),
        },
    }
}

fn phrases(id: u32, class: C, severity: S, paranoia: u8, message: &str, targets: &[T], list: &[&str]) -> Rule {
    Rule {
        id,
        class,
        severity,
        paranoia,
        message: message.to_owned(),
        targets: targets.to_vec(),
        matcher: Matcher::Phrases { phrases: list.iter().map(|s| (*s).to_owned()).collect() },
    }
}

const ARGS: &[T] = &[T::Args, T::ArgNames, T::Headers, T::RawBody];
const ARGS_PATH: &[T] = &[T::Path, T::Args, T::ArgNames, T::Headers, T::RawBody];
const QUOTES: &[&str] = &["'", "\"", "`"];

/// Commands an injected shell payload typically runs first.
const RARE_CMDS: &str = r"(?:whoami|uname|ifconfig|ipconfig|netstat|wget|curl|ncat|netcat|nslookup|powershell|pwsh|bash|zsh|ksh|telnet|systeminfo|tasklist|/bin/sh|cmd\.exe|cmd\s+/c|python[23]?\s+-c|perl\s+-e|php\s+-r|nc\s+-[elvnp]|chmod|chown|busybox|net\s+user)";
const COMMON_CMDS: &str = r"(?:cat|ls|id|rm|echo|sleep|ping|ps|kill|sh|env|touch|python[23]?|perl|php|ruby|base64|mkdir|dir|head|tail|nc)";

/// The built-in rules.
pub fn builtin_rules() -> Vec<Rule> {
    // A newline separates commands only after something that ends an
    // argument (a digit or quote); after prose it is just a line break.
    let sep = r#"(?:[;|&`]|\$\(|[\d'"]\s*[\n\r])"#;
    vec![
        // ---- Evasion ----
        phrases(3002, C::Evasion, S::Critical, 1, "NUL byte in a decoded value", ARGS_PATH, &["\u{0}"]),
        // ---- SQL injection, PL1 ----
        regex(4101, C::Sqli, S::Critical, 1, "SQL boolean tautology after a quote", ARGS,
            r#"(?i)['"]\s*\)*\s*(?:or|and|xor|\|\||&&)\s*\(*\s*['"]?\s*[\w.@]*\s*['"]?\s*(?:=|<>|!=|<=?|>=?|\blike\b|\brlike\b|\bregexp\b)"#, QUOTES),
        regex(4102, C::Sqli, S::Critical, 1, "SQL numeric tautology", ARGS,
            r"(?i)(?:^|[\s()'])(?:or|and|xor|\|\||&&)\s+\(*\s*(?:0x[0-9a-f]+|-?\d+)\s*\)*\s*(?:=|<>|!=|<=?|>=?|\blike\b)\s*\(*\s*(?:0x[0-9a-f]+|-?\d+)", &["=", "<", ">", "like"]),
        regex(4103, C::Sqli, S::Critical, 1, "SQL clause ended by a comment after a quote", ARGS,
            r#"(?i)['"]\s*\)*\s*(?:or|and|xor|\|\||&&)\s+\(*\s*(?:-?\d+|true|false|null|'\d*'|"\d*")\s*\)*\s*(?:--|#|/\*)"#, QUOTES),
        regex(4104, C::Sqli, S::Critical, 1, "UNION SELECT", ARGS,
            r"(?i)\bunion(?:\s|/\*.*?\*/|\(|\+|%20)+(?:all(?:\s|/\*.*?\*/|\()+|distinct(?:\s|/\*.*?\*/|\()+)?select\b", &["union"]),
        regex(4105, C::Sqli, S::Critical, 1, "Stacked SQL statement", ARGS,
            r"(?i);\s*(?:drop\s+(?:table|database|user|view)|delete\s+from|insert\s+into|update\s+[\w.`]+\s+set|truncate\s+table|alter\s+(?:table|user)|create\s+(?:table|user|function)|exec(?:ute)?\s+(?:xp_|sp_|master\.|\(|@)|declare\s+@|shutdown\b|select\s+(?:\*|@@|null\b|\d+\s*,|\w+\s*\(|[\w.]+\s+from\b))", &[";"]),
        regex(4106, C::Sqli, S::Critical, 1, "SQL time-delay function after an operator", ARGS,
            r#"(?i)(?:['")]|\b(?:and|or|xor|select|if)\b|\|\||&&|;|^)\s*\(*\s*(?:sleep|benchmark|pg_sleep|randomblob|dbms_lock\.sleep)\s*\(|\bwaitfor\s+(?:delay|time)\s+['"]"#, &["sleep", "benchmark", "randomblob", "waitfor"]),
        regex(4107, C::Sqli, S::Critical, 1, "SQL system catalogue or file function", ARGS,
            r"(?i)\b(?:information_schema|sysobjects|syscolumns|pg_catalog|pg_shadow|sqlite_master|xp_cmdshell|sp_executesql|sp_oacreate|utl_http|utl_inaddr|dbms_pipe|mysql\.user)\b|@@(?:version|datadir|hostname)\b|\bload_file\s*\(|\binto\s+(?:out|dump)file\b",
            &["information_schema", "sysobjects", "syscolumns", "pg_catalog", "pg_shadow", "sqlite_master", "xp_cmdshell", "sp_executesql", "sp_oacreate", "utl_", "dbms_pipe", "mysql.user", "@@", "load_file", "outfile", "dumpfile"]),
        regex(4108, C::Sqli, S::Critical, 1, "Quote followed directly by an SQL comment", ARGS,
            r#"(?i)['"]\)*(?:--|/\*|#(?:\s|$))|['"]\s+--\s*$|['"]\s*;\s*(?:--|#)"#, QUOTES),
        regex(4109, C::Sqli, S::Critical, 1, "SQL error-based or encoding function", ARGS,
            r"(?i)\b(?:extractvalue|updatexml|name_const|geometrycollection)\s*\(|\bexp\s*\(\s*~|\bconcat(?:_ws)?\s*\(\s*(?:0x[0-9a-f]|char\s*\(|@@|version\s*\(|user\s*\(|database\s*\()|\b(?:char|chr|nchar)\s*\(\s*\d+\s*(?:,\s*\d+\s*){2,}\)|\b(?:ascii|substring|substr|mid|ord|length)\s*\(\s*\(\s*select\b",
            &["extractvalue", "updatexml", "name_const", "geometrycollection", "exp", "concat", "char", "chr", "select"]),
        regex(4110, C::Sqli, S::Critical, 1, "MySQL executable comment", ARGS, r"/\*!\d*", &["/*!"]),
        regex(4111, C::Sqli, S::Critical, 1, "ORDER BY / HAVING probe", ARGS,
            r"(?i)\border\s+by\s+\d+\s*(?:--|#|/\*|;|,\s*\d)|\bhaving\s+\d+\s*=\s*\d+|\bgroup\s+by\s+[\w.,\s]+\bhaving\b\s+\d", &["order", "having"]),
        regex(4112, C::Sqli, S::Critical, 1, "SQL keyword chain with comment obfuscation", ARGS,
            r"(?i)\b(?:select|union|from|where|and|or)/\*.*?\*/(?:select|union|from|where|and|or|\d|'|\()", &["/*"]),
        regex(4113, C::Sqli, S::Critical, 1, "Subquery in a boolean condition", ARGS,
            r#"(?i)(?:['"`]|\b(?:and|or|xor|if)\b)\s*\(+\s*select\b"#, &["select"]),
        // ---- SQL injection, PL2+ ----
        regex(4120, C::Sqli, S::Critical, 2, "SELECT ... FROM in an argument", ARGS,
            r"(?i)\bselect\b[^\n]*?\bfrom\b", &["select"]),
        regex(4121, C::Sqli, S::Critical, 2, "SQL function call that delays or reads", ARGS,
            r"(?i)\b(?:sleep|benchmark|pg_sleep|version|database|user|current_user|system_user|substring|substr|ascii|hex|unhex)\s*\(\s*\)?", &["("]),
        regex(4122, C::Sqli, S::Error, 3, "Quote next to a boolean keyword", ARGS, r#"(?i)['"`]\s*(?:or|and|xor|union|select|order|having|where)\b"#, QUOTES),
        regex(4123, C::Sqli, S::Warning, 3, "SQL comment sequence", ARGS, r"--(?:\s|$)|/\*|\*/|#\s*$", &["--", "/*", "*/", "#"]),
        regex(4124, C::Sqli, S::Notice, 4, "SQL metacharacter", ARGS, r#"['";]"#, &["'", "\"", ";"]),
        regex(4125, C::Sqli, S::Warning, 4, "Two or more SQL keywords", ARGS,
            r"(?i)\b(?:select|insert|update|delete|drop|where|from|union|join|table)\b.*\b(?:select|insert|update|delete|drop|where|from|union|join|table)\b", &["select", "insert", "update", "delete", "drop", "where", "from", "union", "join", "table"]),
        // ---- XSS, PL1 ----
        regex(4201, C::Xss, S::Critical, 1, "Script tag", ARGS, r"(?i)<\s*/?\s*script\b", &["script"]),
        regex(4202, C::Xss, S::Critical, 1, "Event handler attribute in a tag", ARGS,
            r#"(?i)<[a-z!/?][^>]*?[\s/"'](?:on[a-z]{3,})\s*="#, &["<"]),
        regex(4203, C::Xss, S::Critical, 1, "Script URL scheme", ARGS,
            r"(?i)(?:j\s*a\s*v\s*a\s*s\s*c\s*r\s*i\s*p\s*t|v\s*b\s*s\s*c\s*r\s*i\s*p\s*t|livescript)\s*:\s*(?:[^\s]*[(`=]|//|[a-z_$][\w$.]*\s*\()", &["t:", "t :", "t\t:", "t\n:", "t\r:", "t  :"]),
        regex(4204, C::Xss, S::Critical, 1, "Active-content tag", ARGS,
            r"(?i)<\s*(?:iframe|frame|frameset|object|embed|applet|base|svg|math|meta|isindex|xss)\b[^>]*?(?:[\s/]on[a-z]+\s*=|\bsrc\s*=|\bsrcdoc\s*=|\bhref\s*=|\bdata\s*=|\bcontent\s*=|\bxmlns\b|>|$)",
            &["<"]),
        regex(4205, C::Xss, S::Critical, 1, "HTML or SVG data URL", ARGS, r"(?i)\bdata\s*:\s*(?:text/html|image/svg\+xml|application/(?:x-)?javascript)", &["data"]),
        regex(4206, C::Xss, S::Critical, 1, "DOM sink or cookie access", ARGS,
            r"(?i)\bdocument\s*\.\s*(?:cookie|domain|write(?:ln)?\s*\()|\bwindow\s*\.\s*(?:location\s*=|name\b)|\.\s*innerhtml\s*=|\bstring\s*\.\s*fromcharcode\s*\(|\bset(?:timeout|interval)\s*\(\s*['`]|\blocation\s*\.\s*(?:href\s*=|hash\b)",
            &["document", "window", "innerhtml", "fromcharcode", "settimeout", "setinterval", "location"]),
        regex(4207, C::Xss, S::Critical, 1, "CSS expression or binding", ARGS, r"(?i):\s*expression\s*\(|-moz-binding\s*:|\bbehavior\s*:\s*url\s*\(", &["expression", "binding", "behavior"]),
        regex(4208, C::Xss, S::Critical, 1, "Client-side template injection", ARGS,
            r"(?i)\{\{[^}]*(?:constructor|\$on\b|\$eval|__proto__|alert\s*\(|\$emit)", &["{{"]),
        regex(4209, C::Xss, S::Critical, 1, "Dialog function called from an attribute or quote break", ARGS,
            r#"(?i)['"`>=]\s*[;,+\-*/|&]?\s*(?:alert|prompt|confirm|eval)\s*(?:\(|`|\.call|\.apply|&lpar;)"#, &["alert", "prompt", "confirm", "eval"]),
        // ---- XSS, PL2+ ----
        regex(4220, C::Xss, S::Critical, 2, "HTML tag that can carry script", ARGS,
            r"(?i)<\s*(?:form|style|link|details|marquee|template|textarea|select|button|a|div|span|table|p|b|i|h[1-6])\b[^>]*>", &["<"]),
        regex(4221, C::Xss, S::Critical, 2, "JavaScript call", ARGS, r"(?i)\b(?:eval|alert|prompt|confirm|atob|fetch)\s*\(", &["("]),
        regex(4222, C::Xss, S::Warning, 3, "Angle bracket followed by a letter", ARGS, r"<[a-zA-Z/!]", &["<"]),
        regex(4223, C::Xss, S::Notice, 4, "HTML metacharacter", ARGS, r"[<>]", &["<", ">"]),
        // ---- Path traversal, PL1 ----
        regex(4301, C::PathTraversal, S::Critical, 1, "Traversal segment at the start of a path", ARGS_PATH,
            r"(?:^|[\\/=])\.{2,}[\\/]", &[".."]),
        regex(4302, C::PathTraversal, S::Critical, 1, "Repeated traversal segments", ARGS_PATH,
            r"\.\.[\\/]+\.\.(?:[\\/]|$)|\.\.\.\.[\\/]{2}|\.\.;/", &[".."]),
        regex(4303, C::PathTraversal, S::Critical, 1, "Sensitive system file", ARGS_PATH,
            r"(?i)/etc/(?:passwd|shadow|group|sudoers|issue)\b|/proc/(?:self|\d+)/(?:environ|cmdline|maps|fd)|\b(?:boot|win|system)\.ini\b|\\windows\\system32\\|/\.ssh/(?:id_|authorized_keys)|\.htpasswd\b|/\.aws/credentials|/\.git/(?:config|head)\b|\bweb-inf/web\.xml",
            &["/etc/", "/proc/", ".ini", "system32", ".ssh", ".htpasswd", ".aws", ".git", "web-inf"]),
        regex(4305, C::PathTraversal, S::Critical, 2, "Absolute path to a system directory in an argument", &[T::Args],
            r"(?i)^(?:file:)?/(?:etc|proc|sys|root|var/log|usr/local/etc)/|^[a-z]:\\(?:windows|winnt|boot)\b", &["/etc", "/proc", "/sys", "/root", "/var", "/usr", ":\\"]),
        // ---- Path traversal, PL2+ ----
        regex(4320, C::PathTraversal, S::Critical, 2, "Any traversal segment", ARGS_PATH, r"\.\.[\\/]|[\\/]\.\.(?:$|[\\/;])", &[".."]),
        regex(4321, C::PathTraversal, S::Critical, 2, "System file name", ARGS,
            r"(?i)/etc/(?:hosts|resolv\.conf|crontab)|\.bash_history|\.env\b|/var/log/", &["/etc/", ".bash", ".env", "/var/log"]),
        // ---- Command injection, PL1 ----
        regex(4401, C::CommandInjection, S::Critical, 1, "Shell separator then a network or shell command", ARGS,
            &format!(r"(?i){sep}\s*(?:/(?:usr/)?s?bin/)?{RARE_CMDS}\b"), &[";", "|", "&", "\n", "\r", "`", "$("]),
        regex(4402, C::CommandInjection, S::Critical, 1, "Shell separator then a command with arguments", ARGS,
            &format!(r#"(?i){sep}\s*(?:/(?:usr/)?s?bin/)?{COMMON_CMDS}(?:\s+[-/$~.'"{{\\]|\s*[;|&`)<>\n]|\$\{{?IFS)"#), &[";", "|", "&", "\n", "\r", "`", "$("]),
        regex(4403, C::CommandInjection, S::Critical, 1, "Shell separator then a recon command at the end", ARGS,
            r"(?i)(?:[;|`\n]|&&)\s*(?:id|whoami|uname(?:\s+-a)?|ls|pwd|hostname|ps|env)\s*$", &[";", "|", "`", "\n", "&&"]),
        regex(4404, C::CommandInjection, S::Critical, 1, "Shell substitution or IFS trick", ARGS,
            &format!(r#"(?i)\$\{{?IFS\}}?|\$\(\s*{COMMON_CMDS}\b|\$\(\s*{RARE_CMDS}|`\s*{RARE_CMDS}[^`]*`|(?:^|[;|&='"$])`\s*{COMMON_CMDS}\b[^`]*`|{sep}\s*(?:sleep|ping\s+-[cn])\s+\d|\{{\s*(?:cat|ls|id|nc|bash|sh|wget|curl),\s*[/$-]"#), &["$", "`", "{", ";", "|", "&", "\n"]),
        regex(4405, C::CommandInjection, S::Critical, 1, "Quoted or escaped command name", ARGS,
            r#"(?i)\b(?:c['"\\]+a['"\\]*t|ca['"\\]+t|w['"\\]+h['"\\]*o['"\\]*a['"\\]*m['"\\]*i|wh['"\\]+o|who['"\\]+am)\b\s*(?:[-/$;|&]|$)|/(?:\?{3}|[a-z]\?{2}|\?{2}[a-z]|[a-z]\?[a-z]|\?[a-z]{2})/[\w?*]*[?*]"#,
            &["'", "\"", "\\", "?"]),
        regex(4406, C::CommandInjection, S::Critical, 1, "JNDI or server-side template injection", ARGS,
            r"(?i)\$\{\s*(?:jndi|\$\{|lower:|upper:|env:|sys:|::-)|\{\{[^}]*(?:__class__|__globals__|__builtins__|__subclasses__|popen|config\.items|self\._|request\.application|lipsum)|\{%\s*(?:import|include|set\s+\w+\s*=\s*\w+\.__)|<%=?\s*(?:system|exec|`|Runtime)|\$\{\s*(?:T\(|Runtime)|#\{\s*(?:T\(|Runtime)",
            &["${", "{{", "{%", "<%", "#{"]),
        regex(4407, C::CommandInjection, S::Critical, 1, "Direct shell invocation", ARGS,
            r"(?i)(?:^|[\s;|&`(])(?:/(?:usr/)?s?bin/(?:ba|z|k|da)?sh|/bin/busybox|cmd(?:\.exe)?\s+/[ck]|powershell(?:\.exe)?\s+-(?:e|enc|encodedcommand|c|command|nop|w)\b|bash\s+-[ci]|sh\s+-c\s)", &["sh", "cmd", "powershell", "busybox"]),
        regex(4408, C::CommandInjection, S::Critical, 1, "Reverse shell idiom", ARGS,
            r"(?i)/dev/(?:tcp|udp)/|\bnc\s+(?:-\w+\s+)*[\w.]+\s+\d+\s+-e\b|\bmkfifo\s+/tmp|\bsocat\s+\w+:", &["/dev/", "nc", "mkfifo", "socat"]),
        // ---- Command injection, PL2+ ----
        regex(4420, C::CommandInjection, S::Critical, 2, "Backtick command substitution", ARGS, r"`[^`\n]+`", &["`"]),
        regex(4421, C::CommandInjection, S::Critical, 2, "Shell separator then any command word", ARGS,
            &format!(r"(?i)[;|&`]\s*{COMMON_CMDS}\b"), &[";", "|", "&", "`"]),
        regex(4422, C::CommandInjection, S::Warning, 3, "Shell metacharacter sequence", ARGS, r"\$\(|&&|\|\||;\s*\w", &["$(", "&&", "||", ";"]),
        regex(4423, C::CommandInjection, S::Notice, 4, "Pipe or backtick", ARGS, r"[|`]", &["|", "`"]),
        // ---- SSRF ----
        Rule {
            id: 4501,
            class: C::Ssrf,
            severity: S::Critical,
            paranoia: 1,
            message: "URL pointing at a loopback, link-local, private or metadata host".to_owned(),
            targets: vec![T::Args, T::Headers, T::RawBody],
            matcher: Matcher::InternalUrl,
        },
        regex(4502, C::Ssrf, S::Critical, 1, "Non-HTTP URL scheme a fetcher should never follow", &[T::Args, T::Headers, T::RawBody],
            r"(?i)\b(?:gopher|dict|file|ldap|ldaps|tftp|jar|netdoc|phar|expect|php|glob|ssh2)://|\bjar:(?:file|https?):", &["gopher:", "dict:", "file:", "ldap", "tftp:", "jar:", "netdoc:", "phar:", "expect:", "php:", "glob:", "ssh2"]),
        regex(4520, C::Ssrf, S::Critical, 2, "Bare internal IP address in an argument", &[T::Args],
            r"^(?:127\.\d{1,3}|10\.\d{1,3}|192\.168|169\.254|172\.(?:1[6-9]|2\d|3[01]))\.\d{1,3}\.\d{1,3}(?::\d+)?$|^localhost(?::\d+)?$", &["127.", "10.", "192.168", "169.254", "172.", "localhost"]),
    ]
}
