//! Test support: a small MaxMind DB writer (IPv4 search tree, 24-bit records), so the record
//! layouts, the checks of `GeoDb::open` and a `--geoip-db` file that overrides the built-in
//! database are tested on every run without a downloaded file. Compiled for tests only.

use std::net::Ipv4Addr;

pub enum V {
    S(&'static str),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(&'static str, V)>),
    Array(Vec<V>),
}

fn encode(value: &V, out: &mut Vec<u8>) {
    fn head(out: &mut Vec<u8>, kind: u8, size: usize) {
        assert!(size < 29);
        if kind <= 7 {
            out.push(kind << 5 | size as u8);
        } else {
            out.extend([size as u8, kind - 7]);
        }
    }
    fn uint(out: &mut Vec<u8>, kind: u8, n: u64) {
        let skip = n.leading_zeros() as usize / 8;
        head(out, kind, 8 - skip);
        out.extend(&n.to_be_bytes()[skip..]);
    }
    match value {
        V::S(s) => {
            head(out, 2, s.len());
            out.extend(s.as_bytes());
        }
        V::U16(n) => uint(out, 5, u64::from(*n)),
        V::U32(n) => uint(out, 6, u64::from(*n)),
        V::U64(n) => uint(out, 9, *n),
        V::Map(pairs) => {
            head(out, 7, pairs.len());
            for (key, value) in pairs {
                encode(&V::S(key), out);
                encode(value, out);
            }
        }
        V::Array(items) => {
            head(out, 11, items.len());
            items.iter().for_each(|item| encode(item, out));
        }
    }
}

/// A database mapping each IPv4 network ("a.b.c.d/len") to its record.
pub fn mmdb(database_type: &'static str, networks: Vec<(&str, V)>) -> Vec<u8> {
    #[derive(Clone, Copy)]
    enum Rec {
        Empty,
        Node(usize),
        Data(usize),
    }
    let mut nodes = vec![[Rec::Empty; 2]];
    let mut data = Vec::new();
    for (network, record) in networks {
        let (addr, len) = network.split_once('/').unwrap();
        let (addr, len) = (
            u32::from(addr.parse::<Ipv4Addr>().unwrap()),
            len.parse().unwrap(),
        );
        let mut node = 0;
        for bit in 0..len {
            let side = (addr >> (31 - bit) & 1) as usize;
            if bit + 1 == len {
                nodes[node][side] = Rec::Data(data.len());
            } else if let Rec::Node(next) = nodes[node][side] {
                node = next;
            } else {
                nodes.push([Rec::Empty; 2]);
                nodes[node][side] = Rec::Node(nodes.len() - 1);
                node = nodes.len() - 1;
            }
        }
        encode(&record, &mut data);
    }
    let count = nodes.len();
    let mut file = Vec::new();
    for rec in nodes.iter().flatten() {
        let value = match *rec {
            Rec::Empty => count,
            Rec::Node(n) => n,
            Rec::Data(offset) => count + 16 + offset,
        } as u32;
        file.extend(&value.to_be_bytes()[1..]);
    }
    file.extend([0; 16]);
    file.extend(data);
    file.extend(b"\xab\xcd\xefMaxMind.com");
    let metadata = V::Map(vec![
        ("binary_format_major_version", V::U16(2)),
        ("binary_format_minor_version", V::U16(0)),
        ("build_epoch", V::U64(1_781_725_900)),
        ("database_type", V::S(database_type)),
        ("description", V::Map(vec![("en", V::S("test"))])),
        ("ip_version", V::U16(4)),
        ("languages", V::Array(vec![V::S("en")])),
        ("node_count", V::U32(count as u32)),
        ("record_size", V::U16(24)),
    ]);
    encode(&metadata, &mut file);
    file
}

pub fn flat(code: &'static str) -> V {
    V::Map(vec![("country_code", V::S(code))])
}
