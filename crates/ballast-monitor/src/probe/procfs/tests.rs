//! The `/proc` parsers on sample text from real kernels, and on malformed text: every bad
//! input gives an error naming the file, never a panic.

use super::*;

const STAT_SAMPLE: &str = "cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0
intr 199292430 34 9 0 0 0 0 3 0 1 0
ctxt 365294834
btime 1700000000
processes 302563
procs_running 3
procs_blocked 1
softirq 1 2 3
";

#[test]
fn stat_reads_cpu_running_and_blocked() {
    let s = parse_stat(STAT_SAMPLE).unwrap();
    assert_eq!(s.procs_running, 3);
    assert_eq!(s.procs_blocked, 1);
    // user..steal: guest (175628) is not added again.
    let total = 10132153 + 290696 + 3084719 + 46828483 + 16683 + 25195;
    assert_eq!(s.cpu.total, total);
    assert_eq!(s.cpu.idle, 46828483 + 16683);
}

#[test]
fn cpu_used_is_the_busy_share_of_the_delta() {
    let a = CpuTimes {
        total: 1000,
        idle: 800,
    };
    let b = CpuTimes {
        total: 1400,
        idle: 900,
    };
    assert_eq!(b.used_since(&a), Some(0.75));
    assert_eq!(a.used_since(&a), None, "no time passed");
    assert_eq!(a.used_since(&b), None, "counters went backwards");
}

#[test]
fn stat_with_an_old_short_cpu_line_still_parses() {
    let s = parse_stat("cpu 1 2 3 4\nprocs_running 1\nprocs_blocked 0\n").unwrap();
    assert_eq!(s.cpu.total, 10);
    assert_eq!(s.cpu.idle, 4);
}

#[test]
fn malformed_stat_is_an_error_naming_the_file() {
    for bad in [
        "",
        "garbage\n",
        "cpu 1 2 x 4\nprocs_running 1\nprocs_blocked 0\n",
        "cpu 1 2\nprocs_running 1\nprocs_blocked 0\n",
        "cpu 1 2 3 4\nprocs_running\nprocs_blocked 0\n",
        "cpu 1 2 3 4\nprocs_running -1\nprocs_blocked 0\n",
        "cpu 1 2 3 4\nprocs_running 1\n",
    ] {
        let e = parse_stat(bad).unwrap_err();
        assert_eq!(e.file, "/proc/stat", "{bad:?}");
        assert!(e.to_string().starts_with("/proc/stat: "), "{e}");
    }
}

const MEMINFO_SAMPLE: &str = "MemTotal:       16000000 kB
MemFree:         1000000 kB
MemAvailable:    4000000 kB
Buffers:          200000 kB
SwapTotal:       2000000 kB
SwapFree:         500000 kB
HugePages_Total:       0
";

#[test]
fn meminfo_gives_memory_and_swap_shares() {
    let m = parse_meminfo(MEMINFO_SAMPLE).unwrap();
    assert_eq!(m.mem_total, 16_000_000 * 1024);
    assert_eq!(m.memory_used(), Some(0.75));
    assert_eq!(m.swap_used(), 0.75);
}

#[test]
fn no_swap_is_zero_swap_used() {
    let m =
        parse_meminfo("MemTotal: 100 kB\nMemAvailable: 50 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n")
            .unwrap();
    assert_eq!(m.swap_used(), 0.0);
    let m = parse_meminfo("MemTotal: 100 kB\nMemAvailable: 50 kB\n").unwrap();
    assert_eq!(m.swap_used(), 0.0);
    assert_eq!(m.memory_used(), Some(0.5));
}

#[test]
fn malformed_meminfo_is_an_error() {
    for bad in [
        "",
        "MemTotal: 100 kB\n",
        "MemAvailable: 50 kB\n",
        "MemTotal: lots kB\nMemAvailable: 50 kB\n",
        "MemTotal: 100 MB\nMemAvailable: 50 kB\n",
        "MemTotal:\nMemAvailable: 50 kB\n",
    ] {
        assert_eq!(
            parse_meminfo(bad).unwrap_err().file,
            "/proc/meminfo",
            "{bad:?}"
        );
    }
    // A zero total cannot give a share, and does not divide by zero.
    let m = parse_meminfo("MemTotal: 0 kB\nMemAvailable: 0 kB\n").unwrap();
    assert_eq!(m.memory_used(), None);
}

#[test]
fn loadavg_parses_and_refuses_garbage() {
    let l = parse_loadavg("0.52 1.58 2.59 2/1094 12345\n").unwrap();
    assert_eq!((l.load1, l.load5, l.load15), (0.52, 1.58, 2.59));
    for bad in [
        "",
        "0.5 0.5",
        "a b c 1/2 3",
        "-1 0 0 1/1 1",
        "NaN 0 0 1/1 1",
        "inf 1 1",
    ] {
        assert_eq!(
            parse_loadavg(bad).unwrap_err().file,
            "/proc/loadavg",
            "{bad:?}"
        );
    }
}

#[test]
fn mounts_parse_with_escapes() {
    let text = "/dev/vda / ext4 rw,relatime 0 0\n\
                proc /proc proc rw 0 0\n\
                /dev/sdb1 /mnt/my\\040disk xfs rw 0 0\n\
                weird /a\\134b\\9 ext4 rw 0 0\n\
                \n";
    let m = parse_mounts(text).unwrap();
    assert_eq!(m.len(), 4);
    assert_eq!(m[0].source, "/dev/vda");
    assert_eq!(m[0].mount_point, "/");
    assert_eq!(m[0].fs_type, "ext4");
    assert_eq!(m[2].mount_point, "/mnt/my disk");
    // `\134` is a backslash; a backslash without three octal digits stays as written.
    assert_eq!(m[3].mount_point, "/a\\b\\9");
}

#[test]
fn malformed_mounts_is_an_error() {
    let e = parse_mounts("/dev/vda / ext4 rw 0 0\n/dev/vdb /x\n").unwrap_err();
    assert_eq!(e.file, "/proc/self/mounts");
    assert!(e.message.contains("line 2"), "{e}");
    // Escapes at the very end, or out of byte range, do not panic.
    let m = parse_mounts("a /x\\ ext4\nb /y\\77 ext4\nc /z\\777 ext4\n").unwrap();
    assert_eq!(m[0].mount_point, "/x\\");
    assert_eq!(m[1].mount_point, "/y\\77");
    assert_eq!(m[2].mount_point, "/z\\777");
}

#[test]
fn file_nr_gives_allocated_and_max() {
    assert_eq!(
        parse_file_nr("3104\t0\t9223372036854775807\n").unwrap(),
        (3104, 9223372036854775807)
    );
    for bad in ["", "1 0", "1 0 x", "1 0 0", "x 0 5"] {
        assert_eq!(
            parse_file_nr(bad).unwrap_err().file,
            "/proc/sys/fs/file-nr",
            "{bad:?}"
        );
    }
}

const LIMITS_SAMPLE: &str =
    "Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             63429                63429                processes
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
";

#[test]
fn limits_gives_the_soft_open_files_limit() {
    assert_eq!(
        parse_limits_nofile(LIMITS_SAMPLE).unwrap(),
        FileLimit::Limited(1024)
    );
    assert_eq!(
        parse_limits_nofile(
            "Max open files            unlimited            unlimited            files\n"
        )
        .unwrap(),
        FileLimit::Unlimited
    );
    for bad in [
        "",
        "Max processes 1 1 processes\n",
        "Max open files\n",
        "Max open files   many  x\n",
    ] {
        assert_eq!(
            parse_limits_nofile(bad).unwrap_err().file,
            "/proc/PID/limits",
            "{bad:?}"
        );
    }
}

const TCP_SAMPLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 12347 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:C351 0100007F:1F90 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
";

#[test]
fn tcp_states_are_counted_by_name() {
    let mut counts = [0u64; 11];
    count_tcp_states(TCP_SAMPLE, &mut counts).unwrap();
    // And a tcp6 file adds to the same counts.
    count_tcp_states(
        "  sl  local_address remote_address st\n   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 0\n",
        &mut counts,
    )
    .unwrap();
    let named: Vec<(&str, u64)> = TCP_STATES.iter().copied().zip(counts).collect();
    assert!(named.contains(&("established", 2)), "{named:?}");
    assert!(named.contains(&("listen", 2)), "{named:?}");
    assert!(named.contains(&("time_wait", 1)), "{named:?}");
    assert!(named.contains(&("close_wait", 0)), "{named:?}");
    assert_eq!(counts.iter().sum::<u64>(), 5);
}

#[test]
fn tcp_header_only_and_unknown_states_count_nothing() {
    let mut counts = [0u64; 11];
    count_tcp_states("  sl  local_address rem_address   st\n", &mut counts).unwrap();
    count_tcp_states("", &mut counts).unwrap();
    count_tcp_states(
        "hdr\n 0: a b 00 x\n 1: a b 0C x\n 2: a b FF x\n",
        &mut counts,
    )
    .unwrap();
    assert_eq!(counts, [0; 11]);
}

#[test]
fn malformed_tcp_is_an_error() {
    let mut counts = [0u64; 11];
    let e = count_tcp_states("hdr\n 0: a b\n", &mut counts).unwrap_err();
    assert_eq!(e.file, "/proc/net/tcp");
    assert!(e.message.contains("line 2"), "{e}");
    let e = count_tcp_states("hdr\n 0: a b ZZ\n", &mut counts).unwrap_err();
    assert!(e.message.contains("not hex"), "{e}");
    assert!(count_tcp_states("hdr\n 0: a b 1FF\n", &mut counts).is_err());
}

#[test]
fn status_gives_state_and_rss() {
    let s = parse_status("Name:\tsleep\nState:\tS (sleeping)\nVmRSS:\t    1234 kB\n").unwrap();
    assert_eq!(s.state, 'S');
    assert_eq!(s.rss_bytes, Some(1234 * 1024));
    assert!(!s.exited());
    let z = parse_status("Name:\tsleep\nState:\tZ (zombie)\n").unwrap();
    assert!(z.exited());
    assert_eq!(z.rss_bytes, None);
    for bad in ["", "Name: x\n", "State:\n", "State: S\nVmRSS: lots kB\n"] {
        assert_eq!(
            parse_status(bad).unwrap_err().file,
            "/proc/PID/status",
            "{bad:?}"
        );
    }
}

#[test]
fn cmdline_is_joined_with_spaces() {
    assert_eq!(
        join_cmdline(b"sleep\x00300\x00--tag\x00").as_deref(),
        Some("sleep 300 --tag")
    );
    assert_eq!(join_cmdline(b"").as_deref(), None);
    assert_eq!(join_cmdline(b"\x00\x00").as_deref(), None);
    assert_eq!(
        join_cmdline(b"nginx: worker process").as_deref(),
        Some("nginx: worker process")
    );
    assert_eq!(
        join_cmdline(b"bad\xff\x00utf8").as_deref(),
        Some("bad\u{fffd} utf8")
    );
}
