"""Where places are, for warehouse allocation: a small built-in table of mainland China's
31 provincial capitals and some major cities, name matching that tolerates the usual ways
addresses spell them (``广东省`` / ``广东`` / ``Guangdong Province``), and great-circle
distance.

Coordinates are city centres in millionths of a degree (``lat_e6``, ``lon_e6``), accurate
to a few kilometres, which is all a distance *score* needs. Floats are used only inside
:func:`haversine_km`, which returns whole kilometres.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

EARTH_RADIUS_KM = 6371.0088

# Country spellings that mean mainland China for the purpose of the table.
CHINA = frozenset({"cn", "chn", "china", "prc", "中国", "中华人民共和国", "中国大陆", "peoplesrepublicofchina"})


@dataclass(frozen=True, slots=True)
class Province:
    """A provincial-level division: ``name`` is its short Chinese name (``广东``)."""

    name: str
    pinyin: str
    capital: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class City:
    """A city in the table, with the province it belongs to and its centre."""

    name: str
    pinyin: str
    province: str
    lat_e6: int
    lon_e6: int
    aliases: tuple[str, ...] = ()


# The 31 provincial-level divisions of mainland China: 4 municipalities, 22 provinces and
# 5 autonomous regions.
PROVINCES: tuple[Province, ...] = (
    Province("北京", "beijing", "北京", ("peking",)),
    Province("天津", "tianjin", "天津"),
    Province("上海", "shanghai", "上海"),
    Province("重庆", "chongqing", "重庆"),
    Province("河北", "hebei", "石家庄"),
    Province("山西", "shanxi", "太原"),
    Province("辽宁", "liaoning", "沈阳"),
    Province("吉林", "jilin", "长春"),
    Province("黑龙江", "heilongjiang", "哈尔滨"),
    Province("江苏", "jiangsu", "南京"),
    Province("浙江", "zhejiang", "杭州"),
    Province("安徽", "anhui", "合肥"),
    Province("福建", "fujian", "福州"),
    Province("江西", "jiangxi", "南昌"),
    Province("山东", "shandong", "济南"),
    Province("河南", "henan", "郑州"),
    Province("湖北", "hubei", "武汉"),
    Province("湖南", "hunan", "长沙"),
    Province("广东", "guangdong", "广州"),
    Province("海南", "hainan", "海口"),
    Province("四川", "sichuan", "成都"),
    Province("贵州", "guizhou", "贵阳"),
    Province("云南", "yunnan", "昆明"),
    Province("陕西", "shaanxi", "西安"),
    Province("甘肃", "gansu", "兰州"),
    Province("青海", "qinghai", "西宁"),
    Province("内蒙古", "neimenggu", "呼和浩特", ("innermongolia", "neimongol")),
    Province("广西", "guangxi", "南宁"),
    Province("西藏", "xizang", "拉萨", ("tibet",)),
    Province("宁夏", "ningxia", "银川"),
    Province("新疆", "xinjiang", "乌鲁木齐"),
)

CITIES: tuple[City, ...] = (
    # Provincial capitals (and the four municipalities).
    City("北京", "beijing", "北京", 39_904_200, 116_407_400, ("peking",)),
    City("天津", "tianjin", "天津", 39_343_400, 117_361_600),
    City("上海", "shanghai", "上海", 31_230_400, 121_473_700),
    City("重庆", "chongqing", "重庆", 29_563_000, 106_551_600),
    City("石家庄", "shijiazhuang", "河北", 38_042_800, 114_514_900),
    City("太原", "taiyuan", "山西", 37_870_600, 112_548_900),
    City("沈阳", "shenyang", "辽宁", 41_805_700, 123_431_500),
    City("长春", "changchun", "吉林", 43_817_100, 125_323_500),
    City("哈尔滨", "haerbin", "黑龙江", 45_803_800, 126_535_000, ("harbin",)),
    City("南京", "nanjing", "江苏", 32_060_300, 118_796_900),
    City("杭州", "hangzhou", "浙江", 30_274_100, 120_155_100),
    City("合肥", "hefei", "安徽", 31_820_600, 117_227_200),
    City("福州", "fuzhou", "福建", 26_074_500, 119_296_500),
    City("南昌", "nanchang", "江西", 28_682_000, 115_857_900),
    City("济南", "jinan", "山东", 36_651_200, 117_120_100),
    City("郑州", "zhengzhou", "河南", 34_746_600, 113_625_300),
    City("武汉", "wuhan", "湖北", 30_592_800, 114_305_500),
    City("长沙", "changsha", "湖南", 28_228_200, 112_938_800),
    City("广州", "guangzhou", "广东", 23_129_100, 113_264_400, ("canton",)),
    City("海口", "haikou", "海南", 20_044_000, 110_199_900),
    City("成都", "chengdu", "四川", 30_572_800, 104_066_800),
    City("贵阳", "guiyang", "贵州", 26_647_000, 106_630_200),
    City("昆明", "kunming", "云南", 25_038_900, 102_718_300),
    City("西安", "xian", "陕西", 34_341_600, 108_939_800),
    City("兰州", "lanzhou", "甘肃", 36_061_100, 103_834_300),
    City("西宁", "xining", "青海", 36_617_100, 101_778_200),
    City("呼和浩特", "huhehaote", "内蒙古", 40_842_400, 111_749_000, ("hohhot",)),
    City("南宁", "nanning", "广西", 22_817_000, 108_366_500),
    City("拉萨", "lasa", "西藏", 29_652_000, 91_172_100, ("lhasa",)),
    City("银川", "yinchuan", "宁夏", 38_487_200, 106_230_900),
    City("乌鲁木齐", "wulumuqi", "新疆", 43_825_600, 87_616_800, ("urumqi",)),
    # Major cities that are not provincial capitals.
    City("深圳", "shenzhen", "广东", 22_543_100, 114_057_900),
    City("东莞", "dongguan", "广东", 23_020_700, 113_751_800),
    City("佛山", "foshan", "广东", 23_021_500, 113_121_400),
    City("珠海", "zhuhai", "广东", 22_271_000, 113_576_700),
    City("惠州", "huizhou", "广东", 23_111_500, 114_415_200),
    City("苏州", "suzhou", "江苏", 31_299_000, 120_585_300),
    City("无锡", "wuxi", "江苏", 31_491_200, 120_311_900),
    City("常州", "changzhou", "江苏", 31_810_700, 119_974_100),
    City("南通", "nantong", "江苏", 31_980_200, 120_894_300),
    City("徐州", "xuzhou", "江苏", 34_204_400, 117_285_800),
    City("宁波", "ningbo", "浙江", 29_868_300, 121_544_000),
    City("温州", "wenzhou", "浙江", 27_993_800, 120_699_400),
    City("嘉兴", "jiaxing", "浙江", 30_746_100, 120_755_500),
    City("绍兴", "shaoxing", "浙江", 29_995_800, 120_586_100),
    City("金华", "jinhua", "浙江", 29_079_000, 119_647_400),
    City("青岛", "qingdao", "山东", 36_067_100, 120_382_600, ("tsingtao",)),
    City("烟台", "yantai", "山东", 37_463_800, 121_447_900),
    City("潍坊", "weifang", "山东", 36_706_800, 119_161_900),
    City("临沂", "linyi", "山东", 35_104_100, 118_356_400),
    City("厦门", "xiamen", "福建", 24_479_800, 118_089_400, ("amoy",)),
    City("泉州", "quanzhou", "福建", 24_874_100, 118_675_700),
    City("大连", "dalian", "辽宁", 38_914_000, 121_614_700),
    City("唐山", "tangshan", "河北", 39_630_500, 118_180_200),
    City("保定", "baoding", "河北", 38_873_900, 115_464_600),
    City("廊坊", "langfang", "河北", 39_538_000, 116_683_800),
    City("洛阳", "luoyang", "河南", 34_619_700, 112_454_000),
    City("芜湖", "wuhu", "安徽", 31_352_500, 118_433_100),
    City("宜昌", "yichang", "湖北", 30_691_800, 111_286_500),
    City("襄阳", "xiangyang", "湖北", 32_009_000, 112_122_400),
    City("赣州", "ganzhou", "江西", 25_831_100, 114_935_000),
    City("桂林", "guilin", "广西", 25_273_600, 110_290_000),
    City("三亚", "sanya", "海南", 18_252_800, 109_512_000),
    City("绵阳", "mianyang", "四川", 31_467_500, 104_679_600),
    City("包头", "baotou", "内蒙古", 40_657_400, 109_840_300),
)

# Suffixes an address may add to a place name; the longest is removed first.
_CHINESE_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市")
_ENGLISH_SUFFIXES = ("autonomousregion", "municipality", "province", "city")
_NOISE = re.compile(r"[\s\-_'’`.,·]+")


def normalize_place_name(name: str | None) -> str | None:
    """A comparable form of a place name: case-folded, without spaces or apostrophes and
    without administrative suffixes (``广西壮族自治区`` → ``广西``, ``Xi'an City`` → ``xian``).
    ``None`` when nothing is left."""
    if name is None:
        return None
    text = _NOISE.sub("", name.strip().casefold())
    for suffix in (*_CHINESE_SUFFIXES, *_ENGLISH_SUFFIXES):
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            break
    return text or None


def _index_provinces() -> Mapping[str, Province]:
    index: dict[str, Province] = {}
    for province in PROVINCES:
        for key in (province.name, province.pinyin, *province.aliases):
            index[normalize_place_name(key) or key] = province
    return index


def _index_cities() -> Mapping[str, City]:
    index: dict[str, City] = {}
    for city in CITIES:
        for key in (city.name, city.pinyin, *city.aliases):
            index[normalize_place_name(key) or key] = city
    return index


PROVINCE_INDEX: Mapping[str, Province] = _index_provinces()
CITY_INDEX: Mapping[str, City] = _index_cities()


def is_china(country: str | None) -> bool:
    """True when ``country`` names mainland China (``CN``, ``CHN``, ``China``, ``中国``…)."""
    key = normalize_place_name(country)
    return key is not None and key in CHINA


def find_province(name: str | None) -> Province | None:
    """The province ``name`` spells, in Chinese or pinyin, with or without its suffix."""
    key = normalize_place_name(name)
    return PROVINCE_INDEX.get(key) if key else None


def find_city(name: str | None) -> City | None:
    """The table's city ``name`` spells, in Chinese or pinyin, with or without ``市``."""
    key = normalize_place_name(name)
    return CITY_INDEX.get(key) if key else None


class Precision(StrEnum):
    """How closely a located point matches the address it came from."""

    CITY = "city"              # the city itself is in the table
    PROVINCE = "province"      # only the province is known: its capital stands in


@dataclass(frozen=True, slots=True)
class Located:
    """A point found for an address, with the table entry it came from."""

    city: City
    precision: Precision


def locate(province: str | None, city: str | None) -> Located | None:
    """Find a province/city pair in the table: the city when it is listed (and doesn't
    contradict the province), else the province's capital; ``None`` when neither is known."""
    found_province = find_province(province)
    found_city = find_city(city)
    if found_city is not None and (found_province is None or found_province.name == found_city.province):
        return Located(found_city, Precision.CITY)
    if found_province is not None:
        return Located(CITY_INDEX[found_province.capital], Precision.PROVINCE)
    return None


def haversine_km(lat1_e6: int, lon1_e6: int, lat2_e6: int, lon2_e6: int) -> int:
    """Great-circle distance between two points given in millionths of a degree, in whole
    kilometres (rounded half to even)."""
    lat1, lon1 = math.radians(lat1_e6 / 1e6), math.radians(lon1_e6 / 1e6)
    lat2, lon2 = math.radians(lat2_e6 / 1e6), math.radians(lon2_e6 / 1e6)
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return round(2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h))))
