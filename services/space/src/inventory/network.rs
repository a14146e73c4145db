//! Network links from /sys/class/net (kind, MAC, operstate, MTU, speed, byte counters) and
//! their addresses from getifaddrs(3), written in CIDR form. sysfs has no addresses and
//! getifaddrs has no link details, hence the two sources.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use nix::ifaddrs::getifaddrs;
use nix::sys::socket::SockaddrStorage;
use steppps::api::space::NetInterface;

use super::{dir_entries, read_attr, read_parsed};

/// ARPHRD_LOOPBACK from <linux/if_arp.h>: the `type` of a loopback link.
const ARPHRD_LOOPBACK: u32 = 772;

/// Links in `class_dir` (`/sys/class/net`), in interface index order (`lo` first), each with
/// its addresses from `addresses` (interface name → CIDR strings).
pub fn interfaces(
    class_dir: &Path,
    addresses: &BTreeMap<String, Vec<String>>,
) -> Vec<NetInterface> {
    let mut links: Vec<(u32, NetInterface)> = dir_entries(class_dir)
        .into_iter()
        // /sys/class/net also holds `bonding_masters`, a file, when the bonding driver is loaded.
        .filter(|(_, dir)| dir.is_dir())
        .map(|(name, dir)| {
            let index = read_parsed(&dir, "ifindex").unwrap_or(u32::MAX);
            let mut link = interface(name, &dir);
            link.addresses = addresses.get(&link.name).cloned().unwrap_or_default();
            (index, link)
        })
        .collect();
    links.sort_by(|(a_index, a), (b_index, b)| a_index.cmp(b_index).then(a.name.cmp(&b.name)));
    links.into_iter().map(|(_, link)| link).collect()
}

fn interface(name: String, dir: &Path) -> NetInterface {
    let statistics = dir.join("statistics");
    NetInterface {
        kind: link_kind(dir).to_owned(),
        mac: read_attr(dir, "address")
            .filter(|mac| mac.split(':').any(|octet| octet != "00"))
            .unwrap_or_default(),
        operstate: read_attr(dir, "operstate").unwrap_or_else(|| "unknown".to_owned()),
        mtu: read_parsed(dir, "mtu").unwrap_or(0),
        // Reading `speed` fails (EINVAL) on links that are down or have no notion of speed,
        // and some drivers write -1; both mean unknown.
        speed_mbps: read_parsed::<i64>(dir, "speed")
            .and_then(|speed| u32::try_from(speed).ok())
            .unwrap_or(0),
        addresses: Vec::new(),
        rx_bytes: read_parsed(&statistics, "rx_bytes").unwrap_or(0),
        tx_bytes: read_parsed(&statistics, "tx_bytes").unwrap_or(0),
        name,
    }
}

/// Classifies a link by what its sysfs directory holds.
fn link_kind(dir: &Path) -> &'static str {
    if read_parsed::<u32>(dir, "type") == Some(ARPHRD_LOOPBACK) {
        "loopback"
    } else if dir.join("wireless").is_dir() || dir.join("phy80211").exists() {
        "wireless"
    } else if dir.join("bridge").is_dir() {
        "bridge"
    } else if std::fs::canonicalize(dir)
        .is_ok_and(|real| real.to_string_lossy().contains("/devices/virtual/"))
    {
        "virtual"
    } else {
        "ether"
    }
}

/// Every interface's addresses, by interface name, from getifaddrs(3). Empty (with a warning)
/// if the call fails: the links are still worth reporting.
pub fn interface_addresses() -> BTreeMap<String, Vec<String>> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let entries = match getifaddrs() {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(%error, "getifaddrs failed; interface addresses unknown");
            return by_name;
        }
    };
    for entry in entries {
        let Some(address) = entry.address.as_ref().and_then(ip_of) else {
            // AF_PACKET entries (one per link) carry no IP address.
            continue;
        };
        let netmask = entry.netmask.as_ref().and_then(ip_of);
        by_name
            .entry(entry.interface_name)
            .or_default()
            .push(cidr(address, netmask));
    }
    by_name
}

fn ip_of(address: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// `address/prefix`, the prefix being the number of leading one bits of the netmask. Without a
/// netmask the address is a host route: /32 or /128.
pub fn cidr(address: IpAddr, netmask: Option<IpAddr>) -> String {
    let prefix = match (address, netmask) {
        (IpAddr::V4(_), Some(IpAddr::V4(mask))) => u32::from(mask).leading_ones(),
        (IpAddr::V6(_), Some(IpAddr::V6(mask))) => u128::from(mask).leading_ones(),
        (IpAddr::V4(_), _) => 32,
        (IpAddr::V6(_), _) => 128,
    };
    format!("{address}/{prefix}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn cidr_prefix_comes_from_the_netmask() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(cidr(ip("127.0.0.1"), Some(ip("255.0.0.0"))), "127.0.0.1/8");
        assert_eq!(
            cidr(ip("192.168.1.5"), Some(ip("255.255.255.0"))),
            "192.168.1.5/24"
        );
        assert_eq!(
            cidr(ip("10.0.0.1"), Some(ip("255.255.252.0"))),
            "10.0.0.1/22"
        );
        assert_eq!(
            cidr(ip("fe80::1"), Some(ip("ffff:ffff:ffff:ffff::"))),
            "fe80::1/64"
        );
        assert_eq!(cidr(ip("::1"), None), "::1/128");
        assert_eq!(cidr(ip("10.0.0.1"), None), "10.0.0.1/32");
    }

    fn link(root: &Path, device_path: &str, attrs: &[(&str, &str)]) {
        let dir = root.join("devices").join(device_path);
        for (name, value) in attrs {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            if name.ends_with('/') {
                fs::create_dir_all(&path).unwrap();
            } else {
                fs::write(path, format!("{value}\n")).unwrap();
            }
        }
        let name = Path::new(device_path).file_name().unwrap();
        symlink(&dir, root.join("class/net").join(name)).unwrap();
    }

    #[test]
    fn links_from_fixture_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        fs::create_dir_all(root.join("class/net")).unwrap();
        fs::write(root.join("class/net/bonding_masters"), "\n").unwrap();
        link(
            root,
            "virtual/net/lo",
            &[
                ("type", "772"),
                ("ifindex", "1"),
                ("address", "00:00:00:00:00:00"),
                ("operstate", "unknown"),
                ("mtu", "65536"),
                ("statistics/rx_bytes", "1234"),
                ("statistics/tx_bytes", "1234"),
            ],
        );
        link(
            root,
            "pci0000:00/0000:00:1f.6/net/enp0s31f6",
            &[
                ("type", "1"),
                ("ifindex", "2"),
                ("address", "8c:16:45:5a:01:02"),
                ("operstate", "up"),
                ("mtu", "1500"),
                ("speed", "1000"),
                ("statistics/rx_bytes", "987654321"),
                ("statistics/tx_bytes", "12345678"),
            ],
        );
        link(
            root,
            "pci0000:00/0000:00:14.3/net/wlp0s20f3",
            &[
                ("type", "1"),
                ("ifindex", "3"),
                ("address", "a4:c3:f0:11:22:33"),
                ("operstate", "dormant"),
                ("mtu", "1500"),
                ("speed", "-1"),
                ("wireless/", ""),
            ],
        );
        link(
            root,
            "virtual/net/br0",
            &[
                ("type", "1"),
                ("ifindex", "5"),
                ("address", "02:42:ac:11:00:01"),
                ("operstate", "down"),
                ("mtu", "1500"),
                ("bridge/", ""),
            ],
        );
        link(
            root,
            "virtual/net/veth1a2b",
            &[("type", "1"), ("ifindex", "4"), ("mtu", "not a number")],
        );

        let addresses = BTreeMap::from([
            (
                "lo".to_owned(),
                vec!["127.0.0.1/8".to_owned(), "::1/128".to_owned()],
            ),
            ("enp0s31f6".to_owned(), vec!["192.168.1.5/24".to_owned()]),
        ]);
        let links = interfaces(&root.join("class/net"), &addresses);
        let summary: Vec<(&str, &str)> = links
            .iter()
            .map(|l| (l.name.as_str(), l.kind.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("lo", "loopback"),
                ("enp0s31f6", "ether"),
                ("wlp0s20f3", "wireless"),
                ("veth1a2b", "virtual"),
                ("br0", "bridge"),
            ]
        );
        let lo = &links[0];
        assert_eq!(lo.mac, "", "the all-zero loopback address is no address");
        assert_eq!(lo.mtu, 65536);
        assert_eq!(lo.addresses, ["127.0.0.1/8", "::1/128"]);
        let wired = &links[1];
        assert_eq!(wired.mac, "8c:16:45:5a:01:02");
        assert_eq!(wired.operstate, "up");
        assert_eq!(wired.speed_mbps, 1000);
        assert_eq!(wired.rx_bytes, 987_654_321);
        assert_eq!(wired.tx_bytes, 12_345_678);
        assert_eq!(wired.addresses, ["192.168.1.5/24"]);
        assert_eq!(links[2].speed_mbps, 0, "-1 means unknown");
        assert_eq!(links[2].operstate, "dormant");
        let veth = &links[3];
        assert_eq!((veth.mtu, veth.speed_mbps, veth.rx_bytes), (0, 0, 0));
        assert_eq!(veth.operstate, "unknown");
    }

    #[test]
    fn live_loopback_is_listed_with_its_address() {
        let links = crate::inventory::Collector::new().network();
        let lo = links.iter().find(|link| link.name == "lo").unwrap();
        assert_eq!(lo.kind, "loopback");
        assert!(
            lo.addresses.iter().any(|a| a == "127.0.0.1/8"),
            "{:?}",
            lo.addresses
        );
        let sysfs_links = dir_entries(Path::new("/sys/class/net"))
            .into_iter()
            .filter(|(_, dir)| dir.is_dir())
            .count();
        assert_eq!(links.len(), sysfs_links);
    }
}
