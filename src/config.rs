pub struct Config { pub listen: std::net::SocketAddr }
