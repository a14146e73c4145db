//! Hotplug notifications straight from the kernel: a netlink socket in the kernel's uevent
//! multicast group, the same messages udev starts from. Reading them directly keeps SPACE
//! independent of udev (a minimal image or a container may have none) at the price of raw
//! kernel names. Each datagram is `ACTION@DEVPATH` then NUL-separated `KEY=VALUE` pairs;
//! [`parse_uevent`] turns one into a [`Uevent`] and [`UeventSocket`] yields them as they come.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recvfrom, setsockopt,
    sockopt,
};
use tokio::io::unix::AsyncFd;

/// What happened to the device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UeventAction {
    Add,
    Remove,
    Change,
    Move,
    Bind,
    Unbind,
    /// Any other action the kernel sends (`online`, `offline`), as written.
    Other(String),
}

impl UeventAction {
    pub fn from_kernel(action: &str) -> UeventAction {
        match action {
            "add" => UeventAction::Add,
            "remove" => UeventAction::Remove,
            "change" => UeventAction::Change,
            "move" => UeventAction::Move,
            "bind" => UeventAction::Bind,
            "unbind" => UeventAction::Unbind,
            other => UeventAction::Other(other.to_owned()),
        }
    }

    /// The kernel's word for the action.
    pub fn as_str(&self) -> &str {
        match self {
            UeventAction::Add => "add",
            UeventAction::Remove => "remove",
            UeventAction::Change => "change",
            UeventAction::Move => "move",
            UeventAction::Bind => "bind",
            UeventAction::Unbind => "unbind",
            UeventAction::Other(other) => other,
        }
    }
}

impl fmt::Display for UeventAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kernel uevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    pub action: UeventAction,
    /// Path under /sys: `/devices/virtual/net/veth0`.
    pub devpath: String,
    /// `net`, `block`, `usb`…; empty if the kernel sent none.
    pub subsystem: String,
    /// The device's name: `DEVNAME` (relative to /dev: `sda1`, `bus/usb/001/004`), else
    /// `INTERFACE` for network links, else the last component of the devpath.
    pub name: String,
    /// Every `KEY=VALUE` pair of the message, including `ACTION`, `DEVPATH` and `SEQNUM`.
    pub fields: BTreeMap<String, String>,
}

/// Why a datagram is not a kernel uevent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UeventError {
    #[error("empty uevent datagram")]
    Empty,
    /// udev's re-broadcast format (a binary header starting with `libudev`). Not an error in the
    /// sender, just not what this socket reads.
    #[error("libudev-format message, not a kernel uevent")]
    FromLibudev,
    #[error("uevent header {header:?} is not ACTION@DEVPATH")]
    BadHeader { header: String },
    #[error("uevent field {field:?} is not KEY=VALUE")]
    BadField { field: String },
}

/// Parses one uevent datagram: `ACTION@DEVPATH\0KEY=VALUE\0…`. The `ACTION` and `DEVPATH`
/// fields, when present, are authoritative over the header (they are what udev uses).
pub fn parse_uevent(datagram: &[u8]) -> Result<Uevent, UeventError> {
    if datagram.iter().all(|byte| *byte == 0) {
        return Err(UeventError::Empty);
    }
    if datagram.starts_with(b"libudev") {
        return Err(UeventError::FromLibudev);
    }
    let mut parts = datagram
        .split(|byte| *byte == 0)
        .filter(|part| !part.is_empty())
        .map(String::from_utf8_lossy);
    let header = parts.next().unwrap_or_default();
    let (header_action, header_devpath) = header
        .split_once('@')
        .filter(|(action, devpath)| !action.is_empty() && devpath.starts_with('/'))
        .ok_or_else(|| UeventError::BadHeader {
            header: header.clone().into_owned(),
        })?;

    let mut fields = BTreeMap::new();
    for part in parts {
        let (key, value) = part
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .ok_or_else(|| UeventError::BadField {
                field: part.clone().into_owned(),
            })?;
        fields.insert(key.to_owned(), value.to_owned());
    }

    let field = |key: &str| fields.get(key).filter(|value| !value.is_empty()).cloned();
    let devpath = field("DEVPATH").unwrap_or_else(|| header_devpath.to_owned());
    let name = field("DEVNAME")
        .or_else(|| field("INTERFACE"))
        .or_else(|| devpath.rsplit('/').next().map(str::to_owned))
        .unwrap_or_default();
    Ok(Uevent {
        action: UeventAction::from_kernel(
            &field("ACTION").unwrap_or_else(|| header_action.to_owned()),
        ),
        subsystem: field("SUBSYSTEM").unwrap_or_default(),
        name,
        devpath,
        fields,
    })
}

/// The kernel's uevent multicast group (udev re-broadcasts on group 2, which this skips).
const KERNEL_UEVENT_GROUP: u32 = 1;

/// Socket receive buffer. Plugging a dock or loading a driver emits hundreds of uevents in a
/// burst; the default (~200 KiB) can overflow before the daemon is scheduled.
const RECEIVE_BUFFER_BYTES: usize = 8 << 20;

/// The kernel caps one uevent near 2 KiB (UEVENT_BUFFER_SIZE plus the header); a larger buffer
/// means no datagram is ever truncated.
const DATAGRAM_BUFFER_BYTES: usize = 16 << 10;

/// A listener on the kernel's uevent netlink socket.
#[derive(Debug)]
pub struct UeventSocket {
    socket: AsyncFd<OwnedFd>,
    datagram: Vec<u8>,
    overflows: u64,
}

impl UeventSocket {
    /// Opens and binds the socket. Must be called inside a Tokio runtime (with IO enabled).
    pub fn open() -> io::Result<Self> {
        let socket = nix::sys::socket::socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkKObjectUEvent,
        )?;
        // SO_RCVBUFFORCE passes the net.core.rmem_max cap but needs CAP_NET_ADMIN; without it
        // take as much as the cap allows.
        if let Err(force_error) = setsockopt(&socket, sockopt::RcvBufForce, &RECEIVE_BUFFER_BYTES) {
            tracing::debug!(%force_error, "SO_RCVBUFFORCE refused; using SO_RCVBUF");
            setsockopt(&socket, sockopt::RcvBuf, &RECEIVE_BUFFER_BYTES)?;
        }
        bind(
            socket.as_raw_fd(),
            &NetlinkAddr::new(0, KERNEL_UEVENT_GROUP),
        )?;
        // Tokio 1.54 deprecates the safe constructor in favour of an `unsafe` one whose
        // contract is that the fd stays valid and the same while registered. An `OwnedFd`
        // moved into the AsyncFd guarantees exactly that, and the workspace denies `unsafe`.
        #[allow(deprecated)]
        let socket = AsyncFd::new(socket)?;
        Ok(UeventSocket {
            socket,
            datagram: vec![0; DATAGRAM_BUFFER_BYTES],
            overflows: 0,
        })
    }

    /// The next uevent. Datagrams that are not kernel uevents, or are malformed, are skipped
    /// (malformed ones with a warning). An error means the socket itself failed.
    ///
    /// Cancel-safe: nothing is awaited between receiving a datagram and returning it, so using
    /// this in `tokio::select!` loses no event.
    pub async fn next(&mut self) -> io::Result<Uevent> {
        loop {
            let mut ready = self.socket.readable().await?;
            let received = ready.try_io(|socket| {
                recvfrom::<NetlinkAddr>(socket.as_raw_fd(), &mut self.datagram)
                    .map_err(io::Error::from)
            });
            let (length, sender) = match received {
                Err(_would_block) => continue,
                Ok(Err(error)) if error.raw_os_error() == Some(Errno::ENOBUFS as i32) => {
                    // The kernel dropped uevents because the buffer filled; the socket still
                    // works. Say so: a consumer may want to re-read the inventory.
                    self.overflows += 1;
                    tracing::warn!(
                        overflows = self.overflows,
                        "uevent receive buffer overflowed; some hotplug events were lost"
                    );
                    continue;
                }
                Ok(Err(error)) => return Err(error),
                Ok(Ok(received)) => received,
            };
            // Only the kernel (port id 0) is trusted to describe devices; a privileged process
            // could otherwise multicast made-up events into the group.
            if sender.is_none_or(|address| address.pid() != 0) {
                tracing::debug!(?sender, "ignoring a uevent not sent by the kernel");
                continue;
            }
            match parse_uevent(&self.datagram[..length]) {
                Ok(uevent) => return Ok(uevent),
                Err(UeventError::FromLibudev) => continue,
                Err(error) => tracing::warn!(%error, "skipping malformed uevent"),
            }
        }
    }

    /// How many times the kernel reported lost uevents (receive buffer overflow).
    pub fn overflows(&self) -> u64 {
        self.overflows
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    use super::*;

    /// Captured on a Linux 6.18 machine with `ip link add … type veth`.
    const NET_ADD: &[u8] = b"add@/devices/virtual/net/qosprobe1\0ACTION=add\0\
DEVPATH=/devices/virtual/net/qosprobe1\0SUBSYSTEM=net\0INTERFACE=qosprobe1\0IFINDEX=10\0SEQNUM=851\0";

    /// A USB disk partition appearing (the shape the kernel sends for block devices).
    const BLOCK_ADD: &[u8] = b"add@/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/\
target6:0:0/6:0:0:0/block/sdb/sdb1\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:14.0/usb2/\
2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1\0SUBSYSTEM=block\0MAJOR=8\0MINOR=17\0\
DEVNAME=sdb1\0DEVTYPE=partition\0DISKSEQ=12\0PARTN=1\0SEQNUM=5712\0";

    #[test]
    fn real_net_uevent_parses() {
        let uevent = parse_uevent(NET_ADD).unwrap();
        assert_eq!(uevent.action, UeventAction::Add);
        assert_eq!(uevent.devpath, "/devices/virtual/net/qosprobe1");
        assert_eq!(uevent.subsystem, "net");
        assert_eq!(uevent.name, "qosprobe1");
        assert_eq!(uevent.fields["IFINDEX"], "10");
        assert_eq!(uevent.fields["SEQNUM"], "851");
        assert_eq!(uevent.fields.len(), 6);
    }

    #[test]
    fn block_uevent_is_named_by_devname() {
        let uevent = parse_uevent(BLOCK_ADD).unwrap();
        assert_eq!(uevent.subsystem, "block");
        assert_eq!(uevent.name, "sdb1");
        assert_eq!(uevent.fields["DEVTYPE"], "partition");
        assert!(uevent.devpath.ends_with("/block/sdb/sdb1"));
    }

    #[test]
    fn name_falls_back_to_the_devpath_and_actions_map() {
        let uevent =
            parse_uevent(b"online@/devices/system/cpu/cpu3\0ACTION=online\0SUBSYSTEM=cpu\0")
                .unwrap();
        assert_eq!(uevent.action, UeventAction::Other("online".into()));
        assert_eq!(uevent.action.to_string(), "online");
        assert_eq!(uevent.name, "cpu3");
        assert_eq!(
            uevent.devpath, "/devices/system/cpu/cpu3",
            "from the header"
        );
        for (word, action) in [
            ("remove", UeventAction::Remove),
            ("change", UeventAction::Change),
            ("move", UeventAction::Move),
            ("bind", UeventAction::Bind),
            ("unbind", UeventAction::Unbind),
        ] {
            assert_eq!(UeventAction::from_kernel(word), action);
            assert_eq!(action.as_str(), word);
        }
    }

    #[test]
    fn malformed_datagrams_are_errors_not_panics() {
        assert_eq!(parse_uevent(b""), Err(UeventError::Empty));
        assert_eq!(parse_uevent(b"\0\0"), Err(UeventError::Empty));
        assert_eq!(
            parse_uevent(b"libudev\0\xfe\xed\xca\xfe\0\0\0\0"),
            Err(UeventError::FromLibudev)
        );
        assert!(matches!(
            parse_uevent(b"add\0ACTION=add\0"),
            Err(UeventError::BadHeader { .. })
        ));
        assert!(matches!(
            parse_uevent(b"@/devices\0"),
            Err(UeventError::BadHeader { .. })
        ));
        assert!(matches!(
            parse_uevent(b"add@/devices/x\0NOEQUALS\0"),
            Err(UeventError::BadField { .. })
        ));
        // Invalid UTF-8 is replaced, not rejected: the event is still worth reporting.
        let lossy = parse_uevent(b"add@/devices/x\xff\0SUBSYSTEM=misc\0").unwrap();
        assert_eq!(lossy.subsystem, "misc");
    }

    /// Deletes the test link even if an assertion fails.
    struct TestLink(String);

    impl Drop for TestLink {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).output();
        }
    }

    fn ip(args: &[&str]) -> bool {
        Command::new("ip")
            .args(args)
            .output()
            .is_ok_and(|output| output.status.success())
    }

    async fn wait_for(socket: &mut UeventSocket, action: UeventAction, name: &str) -> Uevent {
        let matching = async {
            loop {
                let uevent = socket.next().await.unwrap();
                if uevent.subsystem == "net" && uevent.name == name && uevent.action == action {
                    return uevent;
                }
            }
        };
        // A bound on waiting, not a speed requirement: the kernel sends these at once.
        tokio::time::timeout(Duration::from_secs(5), matching)
            .await
            .unwrap_or_else(|_| panic!("no `{action}` uevent for {name} within 5 s"))
    }

    /// Needs root and iproute2. The kernel sends uevents for links created in this network
    /// namespace to sockets in it, so no namespace juggling is needed.
    #[tokio::test]
    async fn link_add_and_remove_arrive_as_uevents() {
        if !nix::unistd::Uid::effective().is_root() || !ip(&["-V"]) {
            eprintln!("skipped: needs root and the `ip` command to create a test link");
            return;
        }
        let mut socket = UeventSocket::open().unwrap();
        let pid = std::process::id();
        let name = format!("qostest{pid}");
        let peer = format!("qospeer{pid}");
        // `dummy` is the plainest link, but its module is not always available (this VM's
        // kernel lacks it); a veth pair exists almost everywhere.
        let created = ip(&["link", "add", &name, "type", "dummy"])
            || ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
        if !created {
            eprintln!("skipped: cannot create a dummy or veth link here (no CAP_NET_ADMIN?)");
            return;
        }
        let _link = TestLink(name.clone());

        let added = wait_for(&mut socket, UeventAction::Add, &name).await;
        assert_eq!(added.subsystem, "net");
        assert!(
            added.devpath.ends_with(&format!("/net/{name}")),
            "{}",
            added.devpath
        );
        assert!(added.fields.contains_key("IFINDEX"));

        assert!(ip(&["link", "del", &name]));
        let removed = wait_for(&mut socket, UeventAction::Remove, &name).await;
        assert_eq!(removed.devpath, added.devpath);
        assert_eq!(socket.overflows(), 0);
    }
}
