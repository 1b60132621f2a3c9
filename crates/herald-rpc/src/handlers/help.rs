use crate::{blank, CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use std::sync::Arc;

pub async fn get_config(s: Arc<Services>, _: CallCtx, _: functions::help::GetConfig) -> Result<enums::Config, RpcError> {
    let now = s.clock.now_secs() as i32;
    let this_dc = s.server.dc_id;
    let mut c = blank::config();
    c.date = now;
    c.expires = now + 3600;
    c.this_dc = this_dc;
    c.dc_options = s
        .server
        .addresses
        .iter()
        .map(|a| {
            enums::DcOption::Option(types::DcOption {
                ipv6: a.ip.contains(':'),
                media_only: false,
                tcpo_only: false,
                cdn: false,
                r#static: false,
                this_port_only: false,
                id: a.id,
                ip_address: a.ip.clone(),
                port: a.port as i32,
                secret: None,
            })
        })
        .collect();
    c.dc_txt_domain_name = "localhost".into();
    c.chat_size_max = 200;
    c.megagroup_size_max = 200_000;
    c.forwarded_count_max = 100;
    c.online_update_period_ms = 210_000;
    c.offline_blur_timeout_ms = 5_000;
    c.offline_idle_timeout_ms = 30_000;
    c.online_cloud_timeout_ms = 300_000;
    c.notify_cloud_delay_ms = 30_000;
    c.notify_default_delay_ms = 1_500;
    c.push_chat_period_ms = 60_000;
    c.push_chat_limit = 2;
    c.edit_time_limit = 172_800;
    c.revoke_time_limit = i32::MAX;
    c.revoke_pm_time_limit = i32::MAX;
    c.rating_e_decay = 2_419_200;
    c.stickers_recent_limit = 200;
    c.channels_read_media_period = 604_800;
    c.call_receive_timeout_ms = 20_000;
    c.call_ring_timeout_ms = 90_000;
    c.call_connect_timeout_ms = 30_000;
    c.call_packet_timeout_ms = 10_000;
    c.me_url_prefix = "https://t.me/".into();
    c.caption_length_max = 1024;
    c.message_length_max = herald_domain::messages::MESSAGE_LENGTH_MAX as i32;
    c.webfile_dc_id = this_dc;
    Ok(enums::Config::Config(c))
}

pub async fn get_nearest_dc(s: Arc<Services>, _: CallCtx, _: functions::help::GetNearestDc) -> Result<enums::NearestDc, RpcError> {
    // One DC for now: the nearest is this one. Several DCs will answer by client network.
    Ok(enums::NearestDc::Dc(types::NearestDc { country: String::new(), this_dc: s.server.dc_id, nearest_dc: s.server.dc_id }))
}
