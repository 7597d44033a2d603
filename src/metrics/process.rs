//! The standard `process_*` metrics (the names every Prometheus client uses, so
//! the usual dashboards work), read from `/proc/self` at each scrape. Linux only:
//! elsewhere there are none. Read by hand because prometheus-client has no process
//! collector, and these are a few numbers from two files.

use prometheus_client::registry::Registry;

#[cfg(target_os = "linux")]
pub(super) fn register(registry: &mut Registry) {
    registry.register_collector(Box::new(linux::ProcessCollector::new()));
}

#[cfg(not(target_os = "linux"))]
pub(super) fn register(_registry: &mut Registry) {}

#[cfg(target_os = "linux")]
mod linux {
    use prometheus_client::collector::Collector;
    use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
    use prometheus_client::metrics::counter::ConstCounter;
    use prometheus_client::metrics::gauge::ConstGauge;

    /// What `/proc/self/stat` says, in the units of the metrics.
    #[derive(Debug, PartialEq)]
    pub(super) struct Stat {
        pub cpu_seconds: f64,
        /// Since the machine booted.
        pub start_seconds_after_boot: f64,
        pub threads: i64,
        pub virtual_bytes: i64,
        pub resident_bytes: i64,
    }

    /// Parses `/proc/self/stat`. The command name (field 2) is in parentheses and
    /// may itself hold spaces and parentheses, so fields are counted after the last `)`.
    pub(super) fn parse_stat(text: &str, ticks_per_second: f64, page_size: i64) -> Option<Stat> {
        let rest = &text[text.rfind(')')? + 1..];
        // `rest` starts at field 3 (state): field n is at index n - 3.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<i64>().ok());
        let utime = field(14)?;
        let stime = field(15)?;
        Some(Stat {
            cpu_seconds: (utime + stime) as f64 / ticks_per_second,
            threads: field(20)?,
            start_seconds_after_boot: field(22)? as f64 / ticks_per_second,
            virtual_bytes: field(23)?,
            resident_bytes: field(24)?.saturating_mul(page_size),
        })
    }

    /// The `btime` line of `/proc/stat`: when the machine booted, in Unix seconds.
    pub(super) fn parse_boot_time(text: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|t| t.trim().parse().ok())
    }

    #[derive(Debug)]
    pub(super) struct ProcessCollector {
        /// The start time never changes: computed once.
        start_time: Option<f64>,
        ticks_per_second: f64,
        page_size: i64,
    }

    impl ProcessCollector {
        pub(super) fn new() -> Self {
            let ticks_per_second = rustix::param::clock_ticks_per_second() as f64;
            let page_size = rustix::param::page_size() as i64;
            let boot = std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|t| parse_boot_time(&t));
            let stat = std::fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|t| parse_stat(&t, ticks_per_second, page_size));
            ProcessCollector {
                start_time: boot.zip(stat).map(|(b, s)| b + s.start_seconds_after_boot),
                ticks_per_second,
                page_size,
            }
        }
    }

    fn gauge<T: prometheus_client::encoding::EncodeGaugeValue>(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: T,
    ) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new(value);
        gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
    }

    impl Collector for ProcessCollector {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            let stat = std::fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|t| parse_stat(&t, self.ticks_per_second, self.page_size));
            if let Some(stat) = stat {
                let cpu = ConstCounter::new(stat.cpu_seconds);
                cpu.encode(encoder.encode_descriptor(
                    "process_cpu_seconds",
                    "Total user and system CPU time spent in seconds",
                    None,
                    cpu.metric_type(),
                )?)?;
                gauge(
                    &mut encoder,
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes",
                    stat.resident_bytes,
                )?;
                gauge(
                    &mut encoder,
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes",
                    stat.virtual_bytes,
                )?;
                gauge(
                    &mut encoder,
                    "process_threads",
                    "Number of OS threads in the process",
                    stat.threads,
                )?;
            }
            if let Some(start) = self.start_time {
                gauge(
                    &mut encoder,
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds",
                    start,
                )?;
            }
            if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
                gauge(
                    &mut encoder,
                    "process_open_fds",
                    "Number of open file descriptors",
                    fds.count() as i64,
                )?;
            }
            let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
            if let Some(max) = limit.current {
                gauge(
                    &mut encoder,
                    "process_max_fds",
                    "Maximum number of open file descriptors",
                    max as i64,
                )?;
            }
            Ok(())
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::linux::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis_of_the_command_name() {
        let line = "16661 (a (b) c) R 16659 16659 10118 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 \
                    7 0 960793 3133440 414 18446744073709551615 94688993980416";
        let stat = parse_stat(line, 100.0, 4096).unwrap();
        assert_eq!(
            stat,
            Stat {
                cpu_seconds: 3.0,
                start_seconds_after_boot: 9607.93,
                threads: 7,
                virtual_bytes: 3133440,
                resident_bytes: 414 * 4096,
            }
        );
        assert_eq!(parse_stat("12 (cut) R 1 2", 100.0, 4096), None);
    }

    #[test]
    fn boot_time_is_read_from_btime() {
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1764570000\nprocesses 9\n"),
            Some(1764570000.0)
        );
    }
}
