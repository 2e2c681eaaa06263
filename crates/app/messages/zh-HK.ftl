# 通知文字，繁體中文（香港）。每個 id 必須同時見於 en.ftl（有測試檢查）。

access-key-subject = 你的醫健通授權號碼
access-key-body = 你的 ehrshare 授權號碼為 { $key }。請只向你願意與其互通紀錄的醫護機構提供。此授權號碼取代所有舊授權號碼。

one-time-password-subject = 你的一次性密碼
one-time-password-body = 你的 ehrshare 一次性密碼為 { $code }，將於 { $minutes } 分鐘後失效。切勿向任何來電者透露。

consent-changed-subject = 你的互通同意已更改
consent-changed-body = 你給予 { $provider } 的互通同意已於 { $time } 更改：{ $change ->
    [given-one-year] 已給予，為期一年
    [given-indefinite] 已給予，不設限期
    [given] 已給予
   *[revoked] 已撤回
}。如非你本人所為，請致電醫健通辦事處。

emergency-access-subject = 你的醫健通紀錄曾在緊急情況下被開啟
emergency-access-body = { $provider } 已於 { $time } 在未有你的互通同意下，開啟你的醫健通紀錄中的緊急資料，為期四小時。所述原因：{ $reason ->
    [unconscious] 病人失去知覺
    [life-threatening] 危及生命的情況
    [unable-to-communicate] 病人無法溝通
   *[other] 其他緊急情況
}。這次查閱會被覆核；如有疑問，請致電電子健康紀錄統籌處。

access-notice-subject = 你的醫健通紀錄曾被查閱
access-notice-body = { $provider } 已於 { $time } 查閱你的醫健通紀錄。病人入口網站列出每次查閱紀錄。

access-key-locked-subject = 你的授權號碼已被鎖定
access-key-locked-body = 有人在{ $provider }多次輸入錯誤的 ehrshare 授權號碼，你的授權號碼現已暫時鎖定。如非你本人所為，請致電電子健康紀錄統籌處。

unlock-code-locked-subject = 解鎖你的受限制紀錄已被鎖定
unlock-code-locked-body = 有人在{ $provider }多次輸入錯誤的一次性密碼，試圖解鎖你的受限制紀錄，解鎖功能現已暫時鎖定。如非你本人所為，請致電電子健康紀錄統籌處。

alert-subject = ehrshare 查閱警示
alert-body = 待審查的查閱警示：{ $summary }

registration-changed-subject = 你的醫健通登記已更改
registration-changed-body = 你的 ehrshare 登記{ $status ->
        [active] 已恢復有效
        [suspended] 已被醫健通辦事處暫停
       *[withdrawn] 已撤回：你的紀錄會被保留，但不再互通
    }。如非你本人要求，請致電醫健通辦事處。

initial-password-subject = 你的 ehrshare 帳戶
initial-password-body = { $provider } 已為你開立 ehrshare 帳戶 { $user }。你的首次密碼是 { $password }。首次登入時，你必須更改密碼並登記保安編碼器。

password-reset-subject = 你的 ehrshare 帳戶已重設
password-reset-body = 你的帳戶管理人員已重設你的 ehrshare 帳戶 { $user }。你的新首次密碼是 { $password }。下次登入時，你必須更改密碼並重新登記保安編碼器。

login-code-subject = 你的 ehrshare 登入編碼
login-code-body = 你的 ehrshare 登入編碼是 { $code }，於 { $minutes } 分鐘後失效。如你並非正在登入，即表示有人知道你的密碼：請立即更改。

account-granted-subject = ehrshare 帳戶已獲授予角色
account-granted-body = ehrshare 帳戶 { $user } 現已獲 { $by } 授予角色 { $role }。如非預期，請通知你的醫護提供者的帳戶管理人員及電子健康紀錄統籌處。

preferences-changed-subject = 你的醫健通通知設定已更改
preferences-changed-body = 你的醫健通通知設定已更改：通知現會以此方式及此語言傳送給你。如你沒有更改設定，請致電醫健通辦事處。

password-code-subject = 你的醫健通密碼編碼
password-code-body = 你設定新醫健通密碼的編碼是 { $code }，於 { $minutes } 分鐘後失效。如你沒有要求，即表示有人知道你的授權號碼或正以你的身分登入：請致電醫健通辦事處。
password-changed-subject = 你的醫健通密碼已更改
password-changed-body = 你的醫健通登入密碼已更改，其他所有登入階段已結束。如你沒有更改密碼，請致電醫健通辦事處。
contact-code-subject = 確認你的醫健通新聯絡資料
contact-code-body = 你確認此醫健通聯絡資料的編碼是 { $code }，於 { $minutes } 分鐘後失效。如你沒有要求，請不用理會本訊息。
contact-changed-subject = 你的醫健通聯絡資料已更改
contact-changed-body = 你的醫健通登記上的{ $kind }已更改，通知及編碼現會傳送至新的聯絡資料。如你沒有更改，請致電醫健通辦事處。
registration-received-subject = 已收到你的醫健通登記
registration-received-body = 已收到你的醫健通登記，正等待核實身分：請帶同身分證明文件（子女登記須另帶出世紙）前往醫健通辦事處或登記中心，或以「智方便」登入後登記。核實後，授權號碼會傳送給你。如你已經登記，資料不會有任何改動。
report-concluded-subject = 你舉報的醫健通紀錄查閱
report-concluded-body = 你舉報於 { $date } 的查閱已完成審查。結果：{ $outcome }
sdm-ending-subject = 代決人的權限即將終止
sdm-ending-body = 你以代決人身分代為行事的人將於 { $date } 年滿 16 歲，你的權限屆時終止。其後他們會自行管理醫健通紀錄：以自己的身分證明文件登入（向醫健通辦事處申請新的授權號碼，會傳送給他們）。
takeover-subject = 你可以自行管理醫健通紀錄
takeover-body = 由 { $date } 起你自行管理醫健通紀錄，代你行事的代決人不能再代為行事。請以你的身分證明文件及新的授權號碼設定登入（可向醫健通辦事處申請）；你的互通同意維持不變。
registration-attempt-subject = 有人嘗試以你的證件登記醫健通
registration-attempt-body = 有人嘗試在網上以你的身分證明文件登記醫健通，但該證件已經登記，資料沒有任何改動。如並非你本人，請致電醫健通辦事處。
contact-confirm-code-subject = 確認更改醫健通聯絡資料
contact-confirm-code-body = 有人要求更改你醫健通登記的手提電話號碼或電郵地址。如是你本人，以此電話確認的編碼是 { $code }（於 { $minutes } 分鐘後失效）。如並非你本人，切勿把編碼告訴任何人，並請致電醫健通辦事處。
